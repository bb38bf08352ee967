// The catalog lookup of static/i18n.js, against the catalog the page is given
// (static/i18n.zh.json): issue 13, item 7.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { fromBrowserLanguages, lang, t, translate } from "../../static/i18n.js";

const zh = JSON.parse(readFileSync(new URL("../../static/i18n.zh.json", import.meta.url), "utf8"));

test("a string is looked up by its English text and its values filled in", () => {
  assert.equal(translate(zh, "Parameters"), "参数");
  assert.equal(translate(zh, "Jump to #%(id)s", { id: 7 }), "跳到 #7");
  assert.equal(translate(zh, "%(n)s answers so far", { n: 30 }), "目前 30 个答案");
});

test("without a catalog, or without an entry, the English is shown, values filled in", () => {
  assert.equal(translate(null, "Jump to #%(id)s", { id: 7 }), "Jump to #7");
  assert.equal(translate(zh, "not in the catalog: %(x)s", { x: 1 }), "not in the catalog: 1");
  // A value that is missing leaves its placeholder, so the gap is seen, not hidden.
  assert.equal(translate(zh, "Jump to #%(id)s"), "跳到 #%(id)s");
});

test("%% is a percent sign, as in the templates (jinja2's newstyle gettext)", () => {
  assert.equal(translate(null, " (%(pct)s %% of the stretch)", { pct: 40 }), " (40 % of the stretch)");
  assert.equal(translate(zh, " (%(pct)s %% of the stretch)", { pct: 40 }), "（占这一段的 40 %）");
});

test("a value that looks like a placeholder is not filled in again", () => {
  assert.equal(translate(zh, "Stay here"), "留在这里");
  assert.equal(translate(null, "%(a)s and %(b)s", { a: "%(b)s", b: "x" }), "%(b)s and x");
});

test("in node (no page, no inlined catalog) the interface is English", () => {
  assert.equal(lang, "en");
  assert.equal(t("Legend"), "Legend");
});

test("a replay's reader: the first of the browser's languages we have, zh-* is Chinese", () => {
  assert.equal(fromBrowserLanguages(["zh-CN"]), "zh");
  assert.equal(fromBrowserLanguages(["zh-TW", "en"]), "zh");
  assert.equal(fromBrowserLanguages(["en-US", "zh-CN"]), "en");
  assert.equal(fromBrowserLanguages(["fr-FR", "ZH"]), "zh");
  assert.equal(fromBrowserLanguages(["fr-FR", "de"]), null); // then the file's own language
  assert.equal(fromBrowserLanguages([]), null);
  assert.equal(fromBrowserLanguages(undefined), null);
});
