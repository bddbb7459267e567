"""Build of lc_kernels: setup.py drives CMake (CMakeLists.txt is the one build definition).

Environment flags:
  LC_KERNELS_SKIP_BUILD=1   install without compiling; the "cpu" backend then reports itself
                            unavailable (lc-kernels info says why).
  LC_KERNELS_PORTABLE=1     build for the baseline ISA instead of -march=native (for wheels
                            and machines other than the one building).
  MAX_JOBS=N                parallel compile jobs (default: all cores).
  CMAKE_GENERATOR           generator override; Ninja is used when present.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        import pybind11

        extdir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_temp = Path(self.build_temp) / "cmake"
        build_temp.mkdir(parents=True, exist_ok=True)
        portable = os.environ.get("LC_KERNELS_PORTABLE", "0") not in ("", "0")
        args = [
            f"-DLC_KERNELS_OUTPUT_DIR={extdir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DLC_KERNELS_PORTABLE={'ON' if portable else 'OFF'}",
            "-DLC_KERNELS_BUILD_TESTS=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if "CMAKE_GENERATOR" not in os.environ and shutil.which("ninja"):
            args.append("-GNinja")
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        print(f"lc_kernels: building the C++ extension ({'portable' if portable else 'native'} ISA) with CMake")
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_temp), *args], check=True)
        subprocess.run(["cmake", "--build", str(build_temp), "--target", "_C", "-j", jobs], check=True)


skip = os.environ.get("LC_KERNELS_SKIP_BUILD", "0") not in ("", "0")
if skip:
    print("lc_kernels: LC_KERNELS_SKIP_BUILD set, installing without the C++ extension")

setup(
    ext_modules=[] if skip else [CMakeExtension("lc_kernels._C")],
    cmdclass={"build_ext": CMakeBuild},
)
