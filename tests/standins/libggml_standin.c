/*
 * offgrid TEST STAND-IN for one of Ollama's lib/ollama/ shared libraries: NOT ggml.
 *
 * Compiled by tests/standins/ollama_release_standin.py into the stand-in release tarball as
 * lib/ollama/libggml-base.so and lib/ollama/libggml-cpu.so (STANDIN_LIBRARY names which), so
 * that the stand-in server and its runners map real shared libraries from the installed tree,
 * as Ollama and its llama-server runners map ggml and its backends. It does nothing else.
 */
#ifndef STANDIN_LIBRARY
#error "build with -DSTANDIN_LIBRARY='\"name\"'"
#endif

const char *offgrid_standin_library(void) { return "offgrid stand-in " STANDIN_LIBRARY; }
