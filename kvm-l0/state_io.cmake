# kvm-l0/state_io.cmake: vCPU/VM state capture and restore on raw KVM fds (included from
# kvm-l0/CMakeLists.txt). Depends only on base/ and state-extract/, not on rehome_kvm.
add_library(rehome_kvm_state ${CMAKE_CURRENT_LIST_DIR}/cpu_state_io.cc
                             ${CMAKE_CURRENT_LIST_DIR}/vm_state_io.cc
                             ${CMAKE_CURRENT_LIST_DIR}/nested_state_io.cc)
target_link_libraries(rehome_kvm_state PUBLIC rehome_state rehome_base rehome_host_options
                                              absl::status absl::statusor absl::str_format)

rehome_add_test(NAME cpu_state_io_test
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/cpu_state_io_test.cc
                        ${CMAKE_CURRENT_LIST_DIR}/state_io_test_vm.cc
                LIBS rehome_kvm_state
                LABELS kvm)
