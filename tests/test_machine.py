"""The machine a result names: read from a cpuinfo file, carried as JSON, rendered once per distinct machine."""

from __future__ import annotations

import json

from imdb_rnn.machine import KERNEL_FLAGS, cpu_model, describe_machine, machine_lines

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_tile amx_int8
"""


def test_a_description_names_the_model_and_the_kernel_flags_it_has(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    machine = describe_machine(cpuinfo)
    assert machine["cpu"] == "Intel(R) Xeon(R) Platinum 8480C"
    assert machine["flags"] == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]  # KERNEL_FLAGS' order
    assert machine["cpus"] >= 1 and machine["memory_gb"] > 0
    assert set(machine["versions"]) >= {"tensorflow", "keras", "numpy"}
    assert json.loads(json.dumps(machine)) == machine  # results carry it as JSON
    assert cpu_model(cpuinfo).startswith("Intel(R) Xeon(R) Platinum 8480C, ")  # the run tag keeps its text


def test_a_cpu_without_the_flags_says_so(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Some CPU\nflags\t\t: fpu sse2\n")
    machine = describe_machine(cpuinfo)
    assert machine["flags"] == []
    assert f"flags none of {' '.join(KERNEL_FLAGS)}" in machine_lines([machine])[2]


def test_the_section_lists_each_distinct_machine_once_older_records_as_far_as_they_go(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    machine = describe_machine(cpuinfo)
    older = {"cpu": "AMD EPYC, 2 CPUs, AVX-512", "versions": {"tensorflow": "2.21.0"}}
    lines = machine_lines([machine, older, machine])
    assert lines[:2] == ["## Machine", ""]
    assert len([line for line in lines if line.startswith("- ")]) == 2
    assert lines[2].startswith(f"- Intel(R) Xeon(R) Platinum 8480C ({machine['cpus']} CPUs, flags avx2 fma ")
    assert f"Python {machine['python']}" in lines[2]
    assert lines[3] == "- AMD EPYC, 2 CPUs, AVX-512; tensorflow 2.21.0"
    assert machine_lines([])[2] == "- not recorded"
