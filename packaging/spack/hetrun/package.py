# Spack package recipe for hetrun. Use it from this repository as a Spack repo:
#   spack repo create ... (or copy this folder into an existing repo's packages/)
#   cd hetrun-checkout && spack dev-build hetrun@0.1.0 +opencl
# There is no public release tarball yet, so no url/sha256 here: build from a checkout
# (spack dev-build, or spack develop in an environment).
from spack.package import *


class Hetrun(CMakePackage, CudaPackage):
    """One YAML job spec, any accelerator: a C11 job launcher for HPC nodes with
    accelerators from several vendors (hwloc placement, pluggable backend modules,
    MPI ranks, JSON reports with accounting), and the SDK to write backend modules."""

    # homepage and url: to be set once the project has a public address and releases.

    license("Apache-2.0")

    version("0.1.0")

    variant("opencl", default=True, description="Build the OpenCL backend module")
    # +cuda and cuda_arch come from CudaPackage: the CUDA backend module (cuBLASLt; NCCL
    # when found).

    depends_on("c", type="build")
    depends_on("cmake@3.20:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    depends_on("hwloc@2:")
    depends_on("libyaml")
    depends_on("cjson")
    depends_on("zlib-api")
    depends_on("utf8proc")
    depends_on("openssl")
    # The CPU backend (the reference, always built) dlopen()s OpenBLAS at run time.
    depends_on("openblas")
    depends_on("opencl", when="+opencl")
    depends_on("cuda@11.8:", when="+cuda")
    # Tests only: the cmocka unit tests (spack install --test=root).
    depends_on("cmocka", type="test")

    def cmake_args(self):
        spec = self.spec
        args = [
            self.define_from_variant("HETRUN_BACKEND_OPENCL", "opencl"),
            self.define_from_variant("HETRUN_BACKEND_CUDA", "cuda"),
            self.define("HETRUN_BACKEND_CPU", True),
            self.define("BUILD_TESTING", self.run_tests),
        ]
        if spec.satisfies("+cuda") and not spec.satisfies("cuda_arch=none"):
            archs = ";".join(f"{a}-real" for a in spec.variants["cuda_arch"].value)
            args.append(self.define("HETRUN_CUDA_ARCHITECTURES", archs))
        return args

    def setup_run_environment(self, env):
        env.set("HETRUN_ROOT", self.prefix)

    @run_after("install")
    @on_package_attributes(run_tests=True)
    def check_installed(self):
        """The installed binary runs and accepts its own installed examples."""
        hetrun = Executable(self.prefix.bin.hetrun)
        hetrun("--version")
        hetrun("validate", *find(self.prefix.share.hetrun.examples, "*.yaml", recursive=False))
