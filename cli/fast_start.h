// r1kit ships as two executables built from the same command files:
//   build/r1kit       the commands that need no LibTorch (math-check, sandbox), linked without it, so
//                     they start in milliseconds (Debian's LibTorch pulls in ~290 shared libraries);
//   build/r1kit-full  every command.
// For any other command (or --help without a command) build/r1kit replaces itself with r1kit-full
// from its own directory, with the same arguments, so users only ever call `r1kit`.
#pragma once

namespace r1kit::cli {

// In the torch-free executable (compiled with R1_CLI_FULL_BINARY): execs the full executable unless the
// requested subcommand is registered here; returns only when it is. A no-op in the full executable.
void exec_full_binary_unless_registered(int argc, char** argv);

// Sets OPENBLAS_CORETYPE (unless already set) to the best OpenBLAS kernel set this CPU supports, for the
// processes started after it: OpenBLAS reads it once, when it is loaded.
void set_blas_core_unless_set();

}  // namespace r1kit::cli
