"""The CPU variants of the kernels library: what each one's machine code may use, which one
is loaded, and that every variant this CPU runs passes the parity and thread-count tests.

The variants are the builds of spikeloc._kernels.VARIANTS installed next to the extension
(all of them unless the package was built with SPIKELOC_VARIANTS).
"""

import collections
import functools
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import spikeloc as sl
from spikeloc import _kernels

PACKAGE = os.path.dirname(os.path.abspath(sl.__file__))
TESTS = os.path.dirname(os.path.abspath(__file__))
INSTALLED = [v.name for v in _kernels.VARIANTS
             if os.path.exists(os.path.join(PACKAGE, _kernels.library_name(v.name)))]
FLAGS = _kernels.cpu_flags()
SUPPORTED = [v.name for v in _kernels.VARIANTS
             if v.name in INSTALLED and FLAGS is not None and set(v.flags) <= FLAGS]


def run_python(code, timeout=120, **env):
    """Runs `code` in a fresh interpreter that imports this test run's spikeloc."""
    environ = {**os.environ, "PYTHONPATH": os.path.dirname(PACKAGE), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=environ)


def library(name):
    path = os.path.join(PACKAGE, _kernels.library_name(name))
    if not os.path.exists(path):
        pytest.skip(f"the {name} kernels are not installed (built with SPIKELOC_VARIANTS)")
    return path


# ---- which variant is loaded ------------------------------------------------------------


def test_the_best_supported_variant_is_loaded_and_reported():
    info = sl.build_info()
    assert info.available == tuple(INSTALLED)
    if os.environ.get(_kernels.FORCE_ENV):
        assert info.variant == os.environ[_kernels.FORCE_ENV]
    else:
        assert info.variant == (SUPPORTED or INSTALLED)[0]
    assert info.library == os.path.join(PACKAGE, _kernels.library_name(info.variant))
    assert info.abi_version == sl.abi_version() and info.threads == sl.default_threads()
    assert info.target_cpus[info.variant] == {v.name: v.target_cpu for v in _kernels.VARIANTS}[
        info.variant]
    for name in info.supported:
        assert info.missing[name] == ()
    assert info.variant in str(info) and "ABI version" in str(info)
    recorded = json.loads(json.dumps(info.as_dict()))  # what run folders record
    assert recorded["variant"] == info.variant and recorded["available"] == list(INSTALLED)


@pytest.mark.parametrize("name", [v.name for v in _kernels.VARIANTS])
def test_a_forced_variant_is_loaded_or_refused(name):
    result = run_python("import spikeloc as sl; print(sl.build_info().variant)",
                        SPIKELOC_KERNELS=name)
    if name in SUPPORTED:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [name]
    else:
        assert result.returncode != 0
        assert "ImportError" in result.stderr and f"SPIKELOC_KERNELS={name}" in result.stderr


def test_an_unknown_forced_variant_names_the_variants():
    result = run_python("import spikeloc", SPIKELOC_KERNELS="sse9")
    assert result.returncode != 0
    assert "SPIKELOC_KERNELS='sse9' names no kernel variant" in result.stderr
    assert ", ".join(v.name for v in _kernels.VARIANTS) in result.stderr


def test_choice_follows_the_cpu_flags():
    variants = list(_kernels.VARIANTS)
    if len(variants) < 3:
        pytest.skip("one variant on this architecture")
    avx512, avx2, baseline = variants
    v3 = frozenset(avx2.flags)
    assert _kernels._choose(variants, frozenset(avx512.flags), None) is avx512
    assert _kernels._choose(variants, v3, None) is avx2
    assert _kernels._choose(variants, v3 - {"fma"}, None) is baseline  # e.g. Sandy Bridge
    assert _kernels._choose(variants, frozenset({"sse2"}), None) is baseline
    assert _kernels._choose(variants, None, None) is baseline  # features unknown
    assert _kernels._choose(variants, None, "avx2") is avx2  # forced and unknown: trusted
    assert _kernels._choose([avx2, baseline], frozenset(avx512.flags), None) is avx2
    with pytest.raises(ImportError, match="this CPU lacks avx512f"):
        _kernels._choose(variants, v3, "avx512")
    with pytest.raises(ImportError, match="has the kernels for avx2 only"):
        _kernels._choose([avx2], v3, "baseline")
    with pytest.raises(ImportError, match="none of the installed kernel variants"):
        _kernels._choose([avx512], v3, None)


# ---- what each library contains ----------------------------------------------------------

# Instructions beyond x86-64's SSE2 (AT&T mnemonics as objdump prints them): VEX/EVEX (AVX,
# FMA, AVX-512: mnemonics starting with "v"), AVX-512 mask instructions ("k..."), POPCNT, LZCNT,
# MOVBE, CRC32, ADX, BMI1/2, and SSE3 to SSE4.2. TZCNT is left out: its encoding (rep bsf)
# runs as BSF on CPUs without BMI1, and LLVM emits it for every target where BSF would do.
BEYOND_SSE2 = (
    r"v\S*|k[a-z]\S*|(?:popcnt|lzcnt|movbe|crc32|adcx|adox)[bwlq]?"
    r"|(?:andn|bextr|blsi|blsmsk|blsr|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx)[lq]?"
    r"|(?:addsubp|hadd|hsub|lddqu|movddup|movshdup|movsldup|pabs|palignr|phadd|phsub"
    r"|pmaddubsw|pmulhrsw|pshufb|psign|blendv?p|dpp|extractps|insertps|movntdqa|mpsadbw"
    r"|packusdw|pblend|pcmpeqq|pextr[bdq]|phminposuw|pinsr[bdq]|pmaxs[bd]|pmaxu[dw]|pmins[bd]"
    r"|pminu[dw]|pmovsx|pmovzx|pmuldq|pmulld|ptest|round[ps][sd]|pcmpestr|pcmpistr|pcmpgtq)\S*")
INSTRUCTION = r"^ +[0-9a-f]+:\t"  # an instruction line of `objdump -d --no-show-raw-insn`
BEYOND_SSE2_LINE = re.compile(INSTRUCTION + r"(" + BEYOND_SSE2 + r")(?=\s|$)", re.M)
AVX2_LINE = re.compile(INSTRUCTION + r"v\S+\s.*%ymm", re.M)
FMA_LINE = re.compile(INSTRUCTION + r"vf(?:n?m(?:add|sub))", re.M)
AVX512 = re.compile(r"%zmm|%k[0-7]\b")  # 512-bit registers, mask registers
# extensions that Haswell and Skylake-SP have but spikeloc._kernels does not require: code
# compiled for those targets must not use them (compilers reach them only through intrinsics)
NOT_REQUIRED_LINE = re.compile(
    INSTRUCTION + r"(adcx|adox|v?aes\S*|rdrand|rdseed|prefetchw|clwb|clflushopt|[rw]d[fg]sbase"
    r"|invpcid|xsave\S*|xrstor\S*)(?=\s|$)", re.M)


@functools.lru_cache(maxsize=None)
def disassembly(path):
    """`objdump -d` of a library (one block per function, headed by its symbol)."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                          text=True, check=True).stdout


def kernels_code(text):
    """The disassembly of the spikeloc kernels' own functions (Swift module SpikeLocKernels,
    its specialisations, and the C ABI), found by symbol name."""
    return "\n".join(block for block in text.split("\n\n")
                     if "15SpikeLocKernels" in block.partition("\n")[0]
                     or re.match(r"[0-9a-f]+ <spk_", block))


def test_baseline_library_runs_on_any_x86_64_cpu():
    """No instruction beyond SSE2 anywhere in the library (the kernels and the Swift runtime
    linked into it), so the wheel cannot crash with an illegal instruction on an old CPU."""
    if "baseline" not in {v.name for v in _kernels.VARIANTS}:
        pytest.skip("no x86-64 variants on this architecture")
    text = disassembly(library("baseline"))
    ours = kernels_code(text)
    assert ours.count("\n") > 10_000  # the kernels were found by name
    beyond = collections.Counter(BEYOND_SSE2_LINE.findall(text))
    assert not beyond, f"instructions beyond SSE2 in the baseline library: {beyond}"


def test_avx2_library_uses_avx2_and_fma_but_no_avx512():
    """The scan sees what the target allows (a control for the baseline test), and the avx2
    build, loaded on AVX2 CPUs without AVX-512, holds no AVX-512 instruction."""
    if "avx2" not in {v.name for v in _kernels.VARIANTS}:
        pytest.skip("no x86-64 variants on this architecture")
    text = disassembly(library("avx2"))
    ours = kernels_code(text)
    assert len(AVX2_LINE.findall(ours)) > 100 and len(FMA_LINE.findall(ours)) > 10
    assert len(BEYOND_SSE2_LINE.findall(ours)) > 1000
    assert not AVX512.search(text)


def test_avx512_library_uses_512_bit_vectors():
    if "avx512" not in {v.name for v in _kernels.VARIANTS}:
        pytest.skip("no x86-64 variants on this architecture")
    assert len(AVX512.findall(kernels_code(disassembly(library("avx512"))))) > 50


@pytest.mark.parametrize("name", ["avx2", "avx512"])
def test_libraries_use_no_extension_their_variant_does_not_require(name):
    if name not in {v.name for v in _kernels.VARIANTS}:
        pytest.skip("no x86-64 variants on this architecture")
    found = collections.Counter(NOT_REQUIRED_LINE.findall(disassembly(library(name))))
    assert not found, f"the {name} library uses extensions it does not require: {found}"


@pytest.mark.parametrize("name", INSTALLED)
def test_libraries_export_only_the_c_abi(name):
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is not installed")
    lines = subprocess.run(["nm", "-D", "--defined-only", library(name)], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    exported = {line.split()[-1] for line in lines if line.split()[-2].isupper()}
    assert exported and all(symbol.startswith("spk_") for symbol in exported), exported
    assert {"spk_abi_version", "spk_kernel_variant", "spk_snn_loss_grad"} <= exported


def test_extension_names_no_kernels_library():
    """The extension takes its spk_* symbols from the library spikeloc._kernels loaded: it has
    no DT_NEEDED entry that would load another one."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    from spikeloc import _native
    extension = _native.__file__
    headers = subprocess.run(["objdump", "-p", extension], capture_output=True, text=True,
                             check=True).stdout
    needed = re.findall(r"NEEDED\s+(\S+)", headers)
    assert needed and not any("SpikeLoc" in lib for lib in needed), needed


# ---- every variant this CPU runs computes what the reference computes ----------------------

SUBSET = [os.path.join(TESTS, name) for name in (
    "test_parity.py", "test_variants.py", "test_eprop.py", "test_data_options.py",
    "test_api.py")]
SUBSET_K = ("test_parity or match_reference or matches_reference or reference_parity "
            "or equals_bptt or depend_on_threads or threads_bit_identical "
            "or independent_of_chunking")


@pytest.mark.parametrize("name", SUPPORTED)
def test_variant_passes_parity_and_thread_tests(name):
    """Parity with the NumPy reference (SNN, membrane-only, variants, e-prop, stimulus with
    noise) and bit-identical results for 1, 2 and 4 threads, with the variant forced."""
    check = run_python("import spikeloc as sl; print(sl.build_info().variant)",
                       SPIKELOC_KERNELS=name)
    assert check.stdout.split() == [name], check.stderr
    environ = {**os.environ, "PYTHONPATH": os.path.dirname(PACKAGE), "SPIKELOC_KERNELS": name}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUBSET,
         "-k", SUBSET_K], capture_output=True, text=True, timeout=600, env=environ,
        cwd=TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 100, result.stdout[-2000:]
    assert "failed" not in result.stdout.splitlines()[-1]
