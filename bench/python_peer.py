#!/usr/bin/env python3
"""The Python peer of `flowcore run --no-history` for bench/cli.

flowcore's callback system is modelled on a documented Python workflow
engine whose callbacks are coroutines driven by asyncio. That engine is
not available here, so this is a small engine in its style, to time the
same job as a whole process: load a workflow file (json.load), build the
graph, run it on an asyncio loop with the documented CallbackManager
(each handler's coroutine awaited in turn, a failing handler logged and
skipped), and print what it measured as one line of JSON on stdout:

    {"nodes": N, "load_ms": ..., "run_ms": ..., "output_nodes": K}

It runs the node types bench/cli's files use, as flowcore does: `set`
outputs a copy of its constant, `pass` its input. A node's input is
{"input": <workflow input>, "<dependency id>": <its output>, ...}. Nodes
that become ready together run concurrently (asyncio.gather); a single
ready node is awaited directly. Usage:

    python3 bench/python_peer.py FILE [--handlers N]

--handlers adds N handlers whose callbacks do nothing (default 0, as
`flowcore run --no-history --quiet` has none).
"""
import asyncio
import json
import logging
import sys
import time

logger = logging.getLogger("python_peer")


class BaseCallbackHandler:
    """Base class for workflow callbacks (the documented interface)."""

    async def on_workflow_start(self, workflow_id, input_data):
        pass

    async def on_workflow_end(self, workflow_id, output_data):
        pass

    async def on_node_start(self, node_id, input_data):
        pass

    async def on_node_end(self, node_id, output_data):
        pass

    async def on_error(self, error_info):
        pass


class CallbackManager:
    """Manage workflow callbacks (the documented interface)."""

    def __init__(self):
        self.handlers = []

    def add_handler(self, handler):
        self.handlers.append(handler)

    async def trigger(self, event, **kwargs):
        for handler in self.handlers:
            method = getattr(handler, event, None)
            if method:
                try:
                    await method(**kwargs)
                except Exception as e:  # isolation, as documented
                    logger.error("Callback error in %s: %s", handler, e)


def copy_json(v):
    """A copy of a JSON value (dicts and lists copied, scalars shared)."""
    if isinstance(v, dict):
        return {k: copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) for x in v]
    return v


class Workflow:
    """The graph of a workflow file, kept in the parsed dicts themselves."""

    def __init__(self, doc):
        self.name = doc.get("name", "workflow")
        self.input = doc.get("input")
        self.nodes = doc["nodes"]
        self.succ = {}
        for spec in self.nodes:
            if spec["type"] not in ("set", "pass"):
                raise ValueError(f"node {spec['id']}: type {spec['type']} is not run by this peer")
            if spec["id"] in self.succ:
                raise ValueError(f"duplicate id {spec['id']}")
            self.succ[spec["id"]] = []
        for spec in self.nodes:
            for dep in spec.get("after", ()):
                if dep not in self.succ:
                    raise ValueError(f"node {spec['id']}: unknown dependency {dep}")
                self.succ[dep].append(spec)


class Engine:
    def __init__(self, workflow, manager):
        self.wf = workflow
        self.manager = manager
        self.outputs = {}

    async def run_node(self, spec):
        node_id = spec["id"]
        inp = {"input": self.wf.input}
        for dep in spec.get("after", ()):
            inp[dep] = self.outputs[dep]
        await self.manager.trigger("on_node_start", node_id=node_id, input_data=inp)
        out = copy_json(spec.get("output")) if spec["type"] == "set" else inp
        self.outputs[node_id] = out
        await self.manager.trigger("on_node_end", node_id=node_id, output_data=out)

    async def run(self):
        wf = self.wf
        await self.manager.trigger("on_workflow_start", workflow_id=wf.name, input_data=wf.input)
        waiting = {spec["id"]: len(spec.get("after", ())) for spec in wf.nodes}
        ready = [spec for spec in wf.nodes if waiting[spec["id"]] == 0]
        done = 0
        while ready:
            if len(ready) == 1:
                await self.run_node(ready[0])
            else:
                await asyncio.gather(*(self.run_node(spec) for spec in ready))
            done += len(ready)
            nxt = []
            for spec in ready:
                for s in wf.succ[spec["id"]]:
                    waiting[s["id"]] -= 1
                    if waiting[s["id"]] == 0:
                        nxt.append(s)
            ready = nxt
        if done != len(wf.nodes):
            raise ValueError("the workflow has a cycle")
        output = {i: self.outputs[i] for i, succ in wf.succ.items() if not succ}
        await self.manager.trigger("on_workflow_end", workflow_id=wf.name, output_data=output)
        return output


def main(argv):
    handlers = 0
    args = argv[1:]
    if len(args) == 3 and args[1] == "--handlers":
        handlers = int(args[2])
        args = args[:1]
    if len(args) != 1:
        sys.stderr.write("usage: python_peer.py FILE [--handlers N]\n")
        return 2
    t0 = time.perf_counter()
    with open(args[0], "rb") as f:
        workflow = Workflow(json.load(f))
    t1 = time.perf_counter()
    manager = CallbackManager()
    for _ in range(handlers):
        manager.add_handler(BaseCallbackHandler())
    output = asyncio.run(Engine(workflow, manager).run())
    t2 = time.perf_counter()
    print(json.dumps({"nodes": len(workflow.nodes), "load_ms": round((t1 - t0) * 1e3, 1),
                      "run_ms": round((t2 - t1) * 1e3, 1), "output_nodes": len(output)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
