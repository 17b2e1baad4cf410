"""Thermal, clock and power state for sustained runs: the board's own tools, parsed.

* Raspberry Pi: ``vcgencmd measure_temp``, ``get_throttled`` (bits below), ``measure_clock arm``,
  and on a Pi 5 ``pmic_read_adc`` (the 5 V input voltage among the PMIC's rails);
* Jetson: one line of ``tegrastats`` (temperatures, CPU load and clock, GPU load, power rails);
* NVIDIA desktop: ``nvidia-smi --query-gpu`` (NVML underneath), throttle reasons included;
* any Linux: ``/sys/class/thermal`` zones and the cpufreq clock.

Parsers take the tools' text so tests run on captured outputs; :func:`probe` picks what exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# vcgencmd get_throttled bits (Raspberry Pi documentation, "vcgencmd").
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm frequency capped",
    2: "throttled",
    3: "soft temperature limit",
    16: "under-voltage occurred",
    17: "arm frequency capping occurred",
    18: "throttling occurred",
    19: "soft temperature limit occurred",
}
# nvidia-smi clocks_throttle_reasons.active bits that mean the GPU ran slower than asked.
NVIDIA_SLOWDOWN = {
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "hardware power brake",
}
NVIDIA_QUERY = "temperature.gpu,clocks.sm,power.draw,clocks_throttle_reasons.active"


def parse_vcgencmd_temp(text: str) -> float | None:
    """``temp=48.3'C`` -> 48.3."""
    m = re.search(r"temp=([\d.]+)", text)
    return float(m.group(1)) if m else None


def parse_throttled(text: str) -> dict:
    """``throttled=0x50005`` -> the set bits by name, and whether it throttled / saw under-voltage."""
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    value = int(m.group(1), 0) if m else 0
    flags = [name for bit, name in THROTTLE_BITS.items() if value >> bit & 1]
    return {
        "value": hex(value),
        "flags": flags,
        "throttled": bool(value & (0b1110 | 0b1110 << 16)),
        "under_voltage": bool(value & (1 | 1 << 16)),
    }


def parse_clock(text: str) -> float | None:
    """``frequency(48)=1500398464`` -> 1500.4 (MHz)."""
    m = re.search(r"frequency\(\d+\)=(\d+)", text)
    return round(int(m.group(1)) / 1e6, 1) if m else None


def parse_pmic_adc(text: str) -> dict[str, float]:
    """Pi 5 ``vcgencmd pmic_read_adc``: ``EXT5V_V volt(24)=5.12793000V`` lines -> {rail: value}."""
    return {
        f"{name}_{unit}": float(value)
        for name, value, unit in re.findall(r"(\S+)\s+(?:current|volt)\(\d+\)=([\d.]+)([AV])", text)
    }


def parse_tegrastats(line: str) -> dict:
    """One ``tegrastats`` line (JetPack 4 to 6) -> temperatures, CPU load/clock, GPU load, power rails."""
    temps = {name.lower(): float(v) for name, v in re.findall(r"(\w+)@(-?[\d.]+)C\b", line)}
    cpus = re.search(r"CPU \[([^\]]*)\]", line)
    cores = re.findall(r"(\d+)%@(\d+)", cpus.group(1)) if cpus else []
    rails = {name: int(now) for name, now in re.findall(r"\b((?:VDD|POM)_\w+) (\d+)(?:mW)?/\d+", line)}
    gpu = re.search(r"GR3D_FREQ (\d+)%", line)
    # Jetson sensors report unused ones at -256 C or 100+ for a PMIC stub; keep only plausible readings.
    real = [v for k, v in temps.items() if -40 < v < 125 and k not in ("pmic",)]
    return {
        "temps": temps,
        "temp_c": max(real) if real else None,
        "cpu_load": [int(p) for p, _ in cores],
        "clock_mhz": max((int(f) for _, f in cores), default=None),
        "gpu_load": int(gpu.group(1)) if gpu else None,
        "power_mw": rails,
    }


def parse_nvidia_smi(text: str) -> dict:
    """``nvidia-smi --query-gpu=<NVIDIA_QUERY> --format=csv,noheader,nounits`` (first GPU)."""
    fields = [f.strip() for f in text.strip().splitlines()[0].split(",")]
    temp, clock, power, reasons = (fields + [""] * 4)[:4]
    mask = int(reasons, 16) if reasons.startswith("0x") else 0
    flags = [name for bit, name in NVIDIA_SLOWDOWN.items() if mask & bit]
    return {
        "temp_c": _num(temp),
        "clock_mhz": _num(clock),
        "power_w": _num(power),
        "flags": flags,
        "throttled": bool(flags),
        "under_voltage": False,
    }


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]" on GPUs that do not report it


def read_sysfs(root: Path = Path("/")) -> dict:
    """Thermal zones (``thermal_zone*/temp``, millidegrees) and CPU 0's current clock."""
    temps = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            temps[f"{kind}:{zone.name}"] = int((zone / "temp").read_text()) / 1000
        except (OSError, ValueError):
            continue
    clock = None
    try:
        clock = int((root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").read_text()) / 1000
    except (OSError, ValueError):
        pass
    return {"temps": temps, "temp_c": max(temps.values()) if temps else None, "clock_mhz": clock}


def _out(cmd: list[str], timeout: float = 5) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _tegrastats_line() -> str:
    proc = subprocess.Popen(["tegrastats", "--interval", "500"], stdout=subprocess.PIPE, text=True)
    try:
        return proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.kill()
        proc.wait()


def _pi() -> dict:
    sample = {
        "temp_c": parse_vcgencmd_temp(_out(["vcgencmd", "measure_temp"])),
        "clock_mhz": parse_clock(_out(["vcgencmd", "measure_clock", "arm"])),
        **parse_throttled(_out(["vcgencmd", "get_throttled"])),
    }
    adc = parse_pmic_adc(_out(["vcgencmd", "pmic_read_adc"]))
    if adc:  # Pi 5 only; the 5 V input sagging is the usual cause of under-voltage flags
        sample["ext5v_v"] = adc.get("EXT5V_V_V")
    return sample


def _jetson() -> dict:
    return {**parse_tegrastats(_tegrastats_line()), "throttled": False, "under_voltage": False}


def _nvidia() -> dict:
    return parse_nvidia_smi(
        _out(["nvidia-smi", f"--query-gpu={NVIDIA_QUERY}", "--format=csv,noheader,nounits"])
    )


def _linux() -> dict:
    return {**read_sysfs(), "throttled": False, "under_voltage": False}


def probe() -> tuple[str, Callable[[], dict]]:
    """The best state reader on this machine: (its name, a function returning one sample)."""
    if shutil.which("vcgencmd"):
        return "vcgencmd", _pi
    if shutil.which("tegrastats"):
        return "tegrastats", _jetson
    if shutil.which("nvidia-smi"):
        return "nvidia-smi", lambda: {**_nvidia(), "cpu": read_sysfs()}
    return "sysfs", _linux


def sample(reader: Callable[[], dict]) -> dict:
    """One timestamped reading; a tool that fails gives an empty reading, never an exception."""
    try:
        values = reader()
    except (OSError, ValueError, IndexError) as exc:
        values = {"error": str(exc)}
    return {"time": time.time(), **values}
