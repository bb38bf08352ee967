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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
TEXT: dict[Lang, str] = {
    "en": "{pages:page} fetched by {workers:worker}; every callback ran in {where} (pid {pid}).",
    "zh": "{workers} 个工作进程抓取了 {pages} 个页面；每个回调都在{where}中运行（pid {pid}）。",
}
IN_MAIN: dict[Lang, str] = {"en": "the main process", "zh": "主进程"}
IN_SEVERAL: dict[Lang, str] = {"en": "several processes", "zh": "多个进程"}
WHY: dict[Lang, str] = {
    "en": "A Pool callback runs in the parent, in its result-handler thread, not in the worker.",
    "zh": "进程池的回调在父进程里运行（在它的结果处理线程中），而不是在工作进程里。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: which process ran the callbacks."""
    pids = r.get("callback_pids")
    if not isinstance(pids, list):
        return None
    in_main = all(p == r.get("main_pid") for p in pids)
    return {"text": say(TEXT[lang], pages=len(pids), workers=len(r.get("fetch_pids") or []),
                        where=(IN_MAIN if in_main else IN_SEVERAL)[lang],
                        pid=number(r.get("main_pid"))),
            "why": WHY[lang], "bad": False}


SPEC = Experiment(
    id="pool_callback",
    title="Callbacks run in the main process",
    summary="Pool workers fetch 5 pages from a local web server; the main process parses "
            "each one the moment it arrives.",
    section="进程池 · 回调函数",
    title_zh="回调函数在主进程中运行",
    summary_zh=(
        "进程池的工作进程从本地 Web 服务器抓取 5 个页面；每个页面一到，主进程就立"
        "即解析它。"
    ),
    lesson=(
        "Fetching a page is slow, blocking I/O, so it goes to the pool: the workers fetch "
        "the pages at the same time. Parsing is the part we want to keep in one place, so "
        "apply_async(get_page, callback=parse_page) asks the pool to hand each page back "
        "to the main process as soon as it is fetched. Watch the callback events: every "
        "one carries the main's pid, never a worker's, and they come in the order the "
        "pages came back (the fast sites first), not the order they were submitted. The "
        "callbacks run in one thread of the main (the pool's result handler), one after "
        "another: a slow callback holds up the results behind it, so keep callbacks "
        "short. (While one runs, the main's colour on the core lanes is real CPU: the "
        "results behind it wait in the pipe, and CPython's Pool worker-handler thread, "
        "which also watches that pipe, wakes again and again until they are read.) The "
        "pages come from a small web server the run starts on 127.0.0.1, whose "
        "'sites' answer after different delays, like the real ones would. If a worker "
        "dies in the middle of a fetch (kill -9 one), the Pool never returns that page and "
        "join() would wait for ever: here the main watches its workers and ends the run "
        "at once, saying which page was lost."
    ),
    lesson_zh=(
        "进程池中任何一个任务一旦处理完了，就立即告知主进程：我好了额，你可以处理我的结果了。"
        "主进程则调用一个函数去处理该结果，该函数即回调函数。"
        "我们可以把耗时间（阻塞）的任务放到进程池中，然后指定回调函数（主进程负责执行），"
        "这样主进程在执行回调函数时就省去了I/O的过程，直接拿到的是任务的结果。"
    ),
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
        "processes": Param(4, "Worker processes in the pool", ge=1, le=16,
                           description_zh="进程池里的工作进程数"),
        "pages": Param(5, "Pages to fetch", ge=1, le=50,
                       description_zh="要抓取的页面数"),
        "parse_delay": Param(0.5, "How long the callback takes to parse a page (seconds)",
                             ge=0, le=10,
                             description_zh="回调函数解析一个页面要多久（秒）"),
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
