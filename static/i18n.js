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
//
// An offline replay (app/replay_export.py) has no server to choose for it: the file holds
// its markup in both languages, one shown (#replay-page) and the other in a
// <template data-replay-lang>, and this module, evaluated before any other reads the page
// (the file's loader imports it first), shows the reader's: the switch's choice in this
// browser (the cookie at the server's address; localStorage for a file on disk, which has
// no cookies), else the first language of navigator.languages we have (zh-* is Chinese),
// else the one the file was made in. Then the catalog is read as on a live page.

export const COOKIE = "procscope_lang";
export const LANGS = ["en", "zh"];
const SAVED = "procscope.view-across-language";
const CHOSEN = "procscope.lang"; // localStorage: the switch's choice, where cookies are not

/** `text` (English) from `catalog` (or itself), its `%(name)s` filled from `values`. */
export function translate(catalog, text, values) {
  const shown = (catalog && Object.hasOwn(catalog, text)) ? catalog[text] : text;
  return shown.replace(/%\((\w+)\)s|%%/g, (whole, name) => {
    if (name === undefined) return "%";
    return values && name in values ? String(values[name]) : whole;
  });
}

/** The first of `languages` (navigator.languages) that we have, by its primary tag; or null. */
export function fromBrowserLanguages(languages) {
  for (const tag of languages || []) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(primary)) return primary;
  }
  return null;
}

/** What the switch chose in this browser, or null. */
function switchedTo() {
  const cookie = document.cookie.match(new RegExp(`(?:^|;\\s*)${COOKIE}=(\\w+)`));
  if (cookie && LANGS.includes(cookie[1])) return cookie[1];
  try {
    const stored = localStorage.getItem(CHOSEN);
    if (LANGS.includes(stored)) return stored;
  } catch { /* storage refused: the browser's languages decide */ }
  return null;
}

/** An offline replay's markup in the reader's language (see the top of this file). */
function showReplayLanguage() {
  const shown = document.getElementById("replay-page");
  if (!shown) return;
  const want = switchedTo()
    || fromBrowserLanguages(navigator.languages?.length ? navigator.languages : [navigator.language]);
  const other = document.querySelector(`template[data-replay-lang="${want}"]`);
  if (!want || want === shown.dataset.lang || !other) return;
  shown.replaceWith(other.content.cloneNode(true));
  document.documentElement.lang = want;
}

function inlinedCatalog() {
  if (typeof document === "undefined") return null;
  showReplayLanguage();
  const node = document.getElementById("i18n-catalog");
  if (!node) return null;
  try { return JSON.parse(node.textContent); } catch { return null; }
}

const catalog = inlinedCatalog();

/** The page's language: the server's (or a replay's reader's) choice; "en" in node. */
export const lang = catalog ? "zh" : "en";

/** An interface string in the page's language. */
export function t(text, values) {
  return translate(catalog, text, values);
}

/**
 * An event's own words in the page's language: its `FIELD_zh` on a Chinese page where the
 * lesson wrote one (a lesson writes the texts it emits in both languages, as its spec's
 * are: `waits_for` and `waits_for_zh`), else its `FIELD`.
 */
export function own(data, field) {
  const zh = lang === "zh" ? data?.[`${field}_zh`] : undefined;
  return zh ?? data?.[field];
}

/**
 * What a server's error answer says, in the page's language: its `detail`, or the `msg` of
 * each item of a 422's list, through the catalog where the server sent the message's key
 * beside it (`i18n`: {key, values}, app/said.py), else as the server wrote it (English).
 * null when the answer says nothing in words.
 */
export function told(body) {
  const one = (text, i18n) => (i18n && typeof i18n.key === "string"
    ? t(i18n.key, i18n.values) : String(text));
  const detail = body?.detail;
  if (typeof detail === "string") return one(detail, body.i18n);
  if (Array.isArray(detail) && detail.length) return detail.map((d) => one(d?.msg, d?.i18n)).join("; ");
  return null;
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
    try { localStorage.setItem(CHOSEN, button.dataset.lang); } catch { /* the cookie it is */ }
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
