// qmp-client/rehome_qmp_main.cc: stand-alone `rehome-qmp` binary (the same CLI the `rehome`
// binary exposes as `rehome qmp`). Single-threaded entry point.
#include <iostream>

#include "qmp-client/qmp_cli.h"

int main(int argc, char** argv) { return rehome::RunQmpCli(argc, argv, std::cout, std::cerr); }
