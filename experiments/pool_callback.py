"""The crawler with a callback: pool workers fetch, the main process parses.

The tutorial crawls five real websites with requests; here the run serves the pages itself
from a local HTTP server (a process of the run, on 127.0.0.1, an ephemeral port), and the
workers fetch them with urllib. Each page answers after its own delay, as real sites do, so
the fetches finish out of order and the callbacks arrive in the order the pages come back.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.pool_watch import (
    LOST_TASK_MARKS,
    WATCH_THREAD,
    LostTaskWatch,
    lost_task_moment,
    task_done,
    task_started,
    watched_pool,
)
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

SITES = ["www.baidu.com", "www.python.org", "www.openstack.org", "help.github.com",
         "www.sina.com.cn"]
# Seconds each site takes to answer (before time_scale): uneven, like the real ones.
LATENCIES = [0.6, 1.4, 1.0, 0.8, 0.3]


def path_of(index: int) -> str:
    """Page 0 is /www.baidu.com, page 5 is /www.baidu.com/page2, and so on."""
    site = SITES[index % len(SITES)]
    return "/" + (site if index < len(SITES) else f"{site}/page{index // len(SITES) + 1}")


def index_of(path: str) -> int:
    """The page number of a path made by path_of (0 for anything else)."""
    site, _, page = path.lstrip("/").partition("/page")
    if site not in SITES:
        return 0
    return SITES.index(site) + len(SITES) * (int(page) - 1 if page.isdigit() else 0)


class PageHandler(BaseHTTPRequestHandler):
    """Runs in the server process, one thread per request: a page after a delay."""

    time_scale = 1.0

    def do_GET(self) -> None:
        index = index_of(self.path)
        delay = LATENCIES[index % len(LATENCIES)] * self.time_scale
        emit("http.request", path=self.path, delay=round(delay, 4))
        time.sleep(delay)
        body = ("<html><title>%s</title><body>%s</body></html>"
                % (self.path, "<p>内容</p>" * (40 + 37 * index))).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        emit("http.response", path=self.path, bytes=len(body))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the http.request / http.response events say it; no stderr noise


def serve(port_out: Connection, stop: Connection, time_scale: float) -> None:
    """Runs in the server process: serve pages until the main says stop."""
    PageHandler.time_scale = time_scale
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    httpd.daemon_threads = True
    port_out.send(httpd.server_address[1])
    port_out.close()
    emit("server.listen", port=httpd.server_address[1])
    waiter = threading.Thread(target=_stop_when_told, args=(httpd, stop), name="stop-waiter")
    waiter.start()
    httpd.serve_forever(poll_interval=0.05)
    waiter.join()
    httpd.server_close()
    emit("server.stop")


def _stop_when_told(httpd: ThreadingHTTPServer, stop: Connection) -> None:
    """Runs in the server process, in a thread: a message or EOF on `stop` ends serving."""
    with contextlib.suppress(EOFError):  # EOF: the main is gone, stop anyway
        stop.recv()
    httpd.shutdown()


def get_page(url: str) -> dict[str, Any]:
    """Runs in each pool worker: fetch one page (the slow, blocking I/O part)."""
    index = index_of(urllib.parse.urlsplit(url).path)
    task_started(index)  # so that the main can tell if this worker dies mid-fetch
    print("<%s> get :%s" % (os.getpid(), url))
    emit("task.start", url=url, label=url.split("/", 3)[-1])
    with urllib.request.urlopen(url, timeout=30) as respone:
        status = respone.status
        text = respone.read().decode("utf-8")
    emit("task.end", url=url, status=status, bytes=len(text))
    task_done(index)
    if status != 200:
        raise RuntimeError("%s answered %s" % (url, status))
    return {"url": url, "text": text, "fetched_by": os.getpid()}


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    parse_delay = params.parse_delay * params.time_scale
    parsed: list[dict[str, Any]] = []
    errors: list[str] = []

    def parse_page(dic: dict[str, Any]) -> None:
        # Runs in the main process, in the Pool's result-handler thread.
        print("<%s> parse :%s" % (os.getpid(), dic["url"]))
        emit("callback", url=dic["url"], fetched_by=dic["fetched_by"])
        # A bar on the main's lane (this thread is drawn inside it), named after the page.
        emit("task.start", url=dic["url"], label="parse " + dic["url"].split("/", 3)[-1],
             label_zh="解析 " + dic["url"].split("/", 3)[-1])
        time.sleep(parse_delay)
        res = "url:%s size:%s" % (dic["url"], len(dic["text"]))  # 模拟解析网页内容
        parsed.append({"url": dic["url"], "size": len(dic["text"]),
                       "fetched_by": dic["fetched_by"], "parsed_by": os.getpid()})
        emit("task.end", url=dic["url"])
        emit("callback.done", url=dic["url"], summary=res)

    def fetch_failed(e: BaseException) -> None:
        # Runs in the main process, in the Pool's result-handler thread.
        emit("callback.error", error="%s: %s" % (type(e).__name__, e))
        errors.append("%s: %s" % (type(e).__name__, e))

    port_in, port_out = Pipe(duplex=False)
    stop_in, stop_out = Pipe(duplex=False)
    server = Process(target=serve, args=(port_out, stop_in, params.time_scale), name="server")
    server.start()
    port_out.close()
    stop_in.close()
    try:
        if not port_in.poll(30):
            raise RuntimeError("the local HTTP server did not start within 30 s")
        port = port_in.recv()
        urls = ["http://127.0.0.1:%d%s" % (port, path_of(i)) for i in range(params.pages)]
        start_time = time.time()
        # A worker killed mid-fetch would make join() wait for ever (pool_watch.py): the
        # watch ends the run instead, saying which page was lost.
        watch = LostTaskWatch(params.pages, ["page %s" % path_of(i).lstrip("/")
                                             for i in range(params.pages)],
                              ["页面 %s" % path_of(i).lstrip("/") for i in range(params.pages)])
        with watched_pool(watch, params.processes) as p:
            for url in urls:
                emit("task.submit", url=url)
                p.apply_async(get_page, args=(url,), callback=parse_page,
                              error_callback=fetch_failed)
            p.close()  # 这两行必须有
            emit("join.wait", what="pool", name="the pool", name_zh="进程池")
            p.join()
            emit("join.done", what="pool", name="the pool")
        used_time = time.time() - start_time
    finally:
        # Shut the HTTP server down before returning: nothing of the run may outlive it.
        stop_out.send("stop")
        stop_out.close()
        server.join(10)
        if server.is_alive():
            server.terminate()
            server.join()
    print("主进程pid:", os.getpid())
    if errors:
        raise RuntimeError("%d page(s) failed: %s" % (len(errors), "; ".join(errors)))
    return {
        "main_pid": os.getpid(),
        "callback_pids": [page["parsed_by"] for page in parsed],
        "fetch_pids": sorted({page["fetched_by"] for page in parsed}),
        "server_pid": server.pid,
        "pages": [{"url": page["url"], "size": page["size"]} for page in parsed],
        "submitted": urls,
        "elapsed": round(used_time, 4),
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: which process ran the callbacks."""
    pids = r.get("callback_pids")
    if not isinstance(pids, list):
        return None
    in_main = all(p == r.get("main_pid") for p in pids)
    return {"text": say(WORDS["text"][lang], pages=len(pids),
                        workers=len(r.get("fetch_pids") or []),
                        where=WORDS["in_main" if in_main else "in_several"][lang],
                        pid=number(r.get("main_pid"))),
            "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="pool_callback", words=WORDS, section="进程池 · 回调函数",
    code="""def get_page(url):
    print('<%s> get :%s' %(os.getpid(),url))
    respone = requests.get(url)
    if respone.status_code == 200:
        return {'url':url,'text':respone.text}

def parse_page(dic):
    print('<%s> parse :%s' %(os.getpid(),dic['url']))
    time.sleep(0.5)
    res='url:%s size:%s\\n' %(dic['url'],len(dic['text']))

p=Pool(4)
for url in urls:
    p.apply_async(get_page,args=(url,),callback=parse_page)
p.close()
p.join()
print('主进程pid:',os.getpid())""",
    params={
        "processes": Param(4, ge=1, le=16),
        "pages": Param(5, ge=1, le=50),
        "parse_delay": Param(0.5, ge=0, le=10),
    },
    marks=LOST_TASK_MARKS,
    helper_threads=(WATCH_THREAD,),
    key_moments=(
        KeyMoment({"kind": "task.submit", "nth": 1}, {"kind": "callback.done", "nth": -1},
                  "the workers fetch; every callback runs in the main, pid {result.main_pid}",
                  label_zh="工作进程负责抓取；每个回调都在主进程（pid {result.main_pid}）"
                           "中运行"),
        lost_task_moment(),  # a worker killed mid-fetch
    ),
    main=main,
    outcome=outcome,
    compare=({"processes": 1}, {"processes": 4}),
)
