// static/traceback.js: which failed runs get a Traceback box, and a traced program's own.
//
// Runs under node --test. Issue 23: a Pool's lost task opened a traceback of procscope's
// wiring, and a traced program that exited 3 showed a "Traceback" box with no traceback.

import { test } from "node:test";
import assert from "node:assert/strict";

import { isTraceback, printedTraceback } from "../../static/traceback.js";

test("only a Python traceback is one", () => {
  assert.ok(isTraceback('Traceback (most recent call last):\n  File "x.py", line 1\nZeroDivisionError: division by zero'));
  assert.ok(!isTraceback("the program exited with code 3"));
  assert.ok(!isTraceback("task 1 was lost: its pool worker (pid 7) died in the middle of it"));
  assert.ok(!isTraceback(null));
});

test("a program's traceback is the last one its main printed on stderr", () => {
  const p = (pid, text, stream = "stderr") => ({ kind: "print", pid, data: stream ? { text, stream } : { text } });
  const prints = [p(10, "hello", null), p(11, "Traceback (most recent call last):"), p(11, "ValueError: child's"),
    p(10, "Traceback (most recent call last):"), p(10, "  old"), p(10, "KeyError: 1"),
    p(10, "Traceback (most recent call last):"), p(10, '  File "raises.py", line 13, in <module>'),
    p(10, "done", null), p(10, "ValueError: the program's own error")];
  assert.equal(printedTraceback(prints, 10), 'Traceback (most recent call last):\n  File "raises.py", line 13, in <module>\nValueError: the program\'s own error');
  assert.equal(printedTraceback(prints.slice(0, 3), 10), null);
});
