"""Running one hostile input in a child process under a memory cap, and measuring what it cost.

A test hands :func:`run_capped` the source of a function body that takes no arguments and returns the
rendered array (or raises); the child process caps its address space (so a runaway decoder fails
there, not on the host), times the call, reads its peak resident memory, and reports back as JSON.
The child never shares the parent's state: a crash, an abort or a kill is an outcome, not a failed
test run.

    result = run_capped('''
        import dicomrender
        return dicomrender.render(PATH)
    ''', PATH=str(path))
    assert result.outcome == "error" and result.error == "PixelDataError"
    assert result.seconds < 2 and result.peak_bytes < 8 * result.output_bytes + 100 * MB
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Optional

MB = 1 << 20

#: Address-space cap of the child beyond what it holds after importing dicomrender.
DEFAULT_CAP = 3 << 30

_DRIVER = r"""
import json, resource, sys, time, traceback
import numpy as np
import dicomrender
args = json.loads(sys.argv[1])
globals().update(args["names"])
def _hwm():
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across fork and exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current resident size
except OSError:
    pass
start_rss = _hwm()
with open("/proc/self/statm") as f:
    vm_pages = int(f.read().split()[0])
cap = vm_pages * resource.getpagesize() + args["cap"]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
namespace = {}
exec("def _case():\n" + args["body"], globals(), namespace)
result = {"outcome": "ok", "error": "", "message": "", "output_bytes": 0}
t0 = time.perf_counter()
try:
    value = namespace["_case"]()
    if isinstance(value, np.ndarray):
        result["output_bytes"] = int(value.nbytes)
        result["shape"] = list(value.shape)
except dicomrender.DicomRenderError as exc:
    result.update(outcome="error", error=type(exc).__name__, message=str(exc),
                  attribute=getattr(exc, "attribute", None))
except BaseException as exc:
    result.update(outcome="foreign", error=type(exc).__name__, message=str(exc)[:2000],
                  traceback=traceback.format_exc()[-3000:])
result["seconds"] = time.perf_counter() - t0
peak = _hwm()
result["peak_bytes"] = max(0, peak - start_rss)
print("\n@@RESULT@@" + json.dumps(result))
"""


@dataclass
class CappedResult:
    """What one capped run did: ``outcome`` is "ok", "error" (a DicomRenderError), "foreign" (any other
    exception) or "crash" (the process died: ``returncode`` says how)."""

    outcome: str
    error: str = ""
    message: str = ""
    attribute: Optional[str] = None
    seconds: float = 0.0
    peak_bytes: int = 0
    output_bytes: int = 0
    returncode: int = 0
    detail: str = ""

    def within(self, seconds: float = 2.0, factor: float = 8.0, slack: int = 100 * MB) -> bool:
        """The issue's bound: under ``seconds`` and peak memory below ``factor`` x output + ``slack``."""
        return self.seconds < seconds and self.peak_bytes < factor * self.output_bytes + slack


def run_capped(body: str, *, cap: int = DEFAULT_CAP, timeout: float = 120.0, **names: Any) -> CappedResult:
    """Run ``body`` (a function body, ``return`` the output) in a child process capped at ``cap`` bytes of
    new address space; ``names`` (JSON values) are globals of the body."""
    payload = json.dumps({"body": textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n",
                          "names": names, "cap": cap})
    try:
        proc = subprocess.run([sys.executable, "-c", _DRIVER, payload], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return CappedResult("crash", returncode=-9, seconds=timeout, detail=f"no result after {timeout} s")
    marker = proc.stdout.rfind("@@RESULT@@")
    if marker < 0:
        return CappedResult("crash", returncode=proc.returncode, detail=(proc.stderr or proc.stdout)[-3000:])
    data = json.loads(proc.stdout[marker + len("@@RESULT@@"):])
    return CappedResult(data["outcome"], data["error"], data["message"], data.get("attribute"), data["seconds"],
                        data["peak_bytes"], data["output_bytes"], proc.returncode,
                        data.get("traceback", "") or proc.stderr[-2000:])
