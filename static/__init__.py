"""static/ installed as procscope.static: the page's scripts, styles and catalog (procscope.resources)."""
