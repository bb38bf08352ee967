// The page's facts for the browser code under node (no page to read them from): the same as
// app.live.catalog.page_facts() sends, kept in page_facts.json (tests/test_page_facts.py
// checks that the file and the server agree).

import { readFileSync } from "node:fs";
import { useFacts } from "../../static/page_facts.js";

useFacts(JSON.parse(readFileSync(new URL("./page_facts.json", import.meta.url), "utf8")));
