// The one source of rehome_test_pch (CMakeLists.txt): the target exists to compile the test
// binaries' precompiled header once per build; this file gives it something to compile.
