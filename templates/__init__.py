"""templates/ installed as procscope.templates: the Jinja2 templates (procscope.resources)."""
