# Integration tests of the MDS daemon, CLI and simulated chunkservers (bash drivers with
# real etcd and real processes; included from CMakeLists.txt).
add_executable(itest_tool ${CMAKE_CURRENT_LIST_DIR}/itest_tool.c)

add_executable(mds_rpc_check ${CMAKE_CURRENT_LIST_DIR}/mds_rpc_check.c)
target_link_libraries(mds_rpc_check PRIVATE spl_mdsc spl_rpc spl_proto spl_base)

foreach(t ha cli recovery etcd_down pause)
  spl_test(test_mds_${t}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_mds_${t}.sh ${CMAKE_BINARY_DIR}
    LABELS "integration;mds" TIMEOUT 300)
endforeach()
