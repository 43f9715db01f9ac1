# spline-mds daemon: RPC services, heartbeats, scheduler, HA (owned by the MDS daemon
# part; included from CMakeLists.txt). spl_mdsc is the client side (CLI, simcs, tests).
add_library(spl_mdsc STATIC ${CMAKE_CURRENT_LIST_DIR}/mds_client.c)
target_link_libraries(spl_mdsc PUBLIC spl_rpc spl_proto spl_base)

add_library(spl_mdsd STATIC
  ${CMAKE_CURRENT_LIST_DIR}/mdsd_config.c ${CMAKE_CURRENT_LIST_DIR}/ha.c
  ${CMAKE_CURRENT_LIST_DIR}/workq.c ${CMAKE_CURRENT_LIST_DIR}/hbstate.c
  ${CMAKE_CURRENT_LIST_DIR}/scheduler.c ${CMAKE_CURRENT_LIST_DIR}/service.c
  ${CMAKE_CURRENT_LIST_DIR}/service_volume.c ${CMAKE_CURRENT_LIST_DIR}/status.c)
target_link_libraries(spl_mdsd PUBLIC spl_mds spl_mdsc spl_metrics spl_rpc spl_proto spl_base
  PkgConfig::JSONC)

add_executable(spline-mds ${CMAKE_CURRENT_LIST_DIR}/mds_main.c)
target_link_libraries(spline-mds PRIVATE spl_mdsd)
