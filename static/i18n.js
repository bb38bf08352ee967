// The interface's language in the browser: t(english, values), and the EN / 中文 switch.
//
// Runs in the browser; imported by every module that writes interface text (and by node's
// tests, where there is no document: then everything is English). The server chose the
// language (app/i18n.py: the switch's cookie, else Accept-Language, which the browser
// builds from navigator.languages) and inlined its catalog in #i18n-catalog; an English
// page has none. One catalog for both sides, static/i18n.zh.json: English text -> Chinese,
// with `%(name)s` for values, as jinja2's i18n extension writes them in the templates.
//
// The switch sets the cookie and reloads the page: the server renders the form, the
// partials and the run list in the new language, and the run shown stays (its address is
// the URL). What the reload would lose, the time window on the timelines, is kept in
// sessionStorage for this one address and given back once (savedView()).

export const COOKIE = "procscope_lang";
const SAVED = "procscope.view-across-language";

/** `text` (English) from `catalog` (or itself), its `%(name)s` filled from `values`. */
export function translate(catalog, text, values) {
  const shown = (catalog && Object.hasOwn(catalog, text)) ? catalog[text] : text;
  return shown.replace(/%\((\w+)\)s|%%/g, (whole, name) => {
    if (name === undefined) return "%";
    return values && name in values ? String(values[name]) : whole;
  });
}

function inlinedCatalog() {
  if (typeof document === "undefined") return null;
  const node = document.getElementById("i18n-catalog");
  if (!node) return null;
  try { return JSON.parse(node.textContent); } catch { return null; }
}

const catalog = inlinedCatalog();

/** The page's language: the server's choice, "en" without a catalog (node, the replay). */
export const lang = catalog ? "zh" : "en";

/** An interface string in the page's language. */
export function t(text, values) {
  return translate(catalog, text, values);
}

/**
 * The EN / 中文 buttons ([data-lang] inside `root`): the cookie, then a reload of the same
 * address. `view()` gives what to keep across the reload ({t0, t1} or null).
 */
export function wireLanguageSwitch(root, { view = () => null } = {}) {
  if (!root) return;
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-lang]");
    if (!button || button.dataset.lang === lang) return;
    document.cookie = `${COOKIE}=${button.dataset.lang}; Path=/; Max-Age=31536000; SameSite=Lax`;
    try {
      const kept = view();
      if (kept) sessionStorage.setItem(SAVED, JSON.stringify({ href: location.href, ...kept }));
    } catch { /* private mode: the page reloads without its window */ }
    location.reload();
  });
}

/** What the switch kept for this address ({t0, t1}), once; null otherwise. */
export function savedView() {
  try {
    const raw = sessionStorage.getItem(SAVED);
    sessionStorage.removeItem(SAVED);
    const kept = raw ? JSON.parse(raw) : null;
    return kept && kept.href === location.href ? kept : null;
  } catch { return null; }
}
