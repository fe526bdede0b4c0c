# The OpenCL backend: included by the top CMakeLists.txt when -DRC_OPENCL=ON.
# OpenCL 1.2 API only (any vendor's driver, and PoCL on CPUs in CI); CLBlast
# does the matrix products, kernels/*.cl the rest, embedded into the library.
find_package(OpenCL REQUIRED)

# Debian's libclblast-dev ships a CMake config (target `clblast`) and a
# pkg-config file; other installs may have only one of them.
find_package(CLBlast CONFIG QUIET)
if(TARGET clblast)
  set(RC_CLBLAST_TARGET clblast)
else()
  pkg_check_modules(CLBLAST REQUIRED IMPORTED_TARGET clblast)
  set(RC_CLBLAST_TARGET PkgConfig::CLBLAST)
endif()

set(RC_OPENCL_DIR ${PROJECT_SOURCE_DIR}/backends/opencl)
file(GLOB RC_OPENCL_SOURCES CONFIGURE_DEPENDS ${RC_OPENCL_DIR}/*.c)
file(GLOB RC_OPENCL_KERNELS CONFIGURE_DEPENDS ${RC_OPENCL_DIR}/kernels/*.cl)
set(RC_OPENCL_EMBEDDED ${CMAKE_CURRENT_BINARY_DIR}/opencl_kernels.c)

add_custom_command(
  OUTPUT ${RC_OPENCL_EMBEDDED}
  COMMAND ${CMAKE_COMMAND} -DKERNEL_DIR=${RC_OPENCL_DIR}/kernels -DOUTPUT=${RC_OPENCL_EMBEDDED}
          -P ${RC_OPENCL_DIR}/embed_kernels.cmake
  DEPENDS ${RC_OPENCL_KERNELS} ${RC_OPENCL_DIR}/embed_kernels.cmake
  COMMENT "Embedding OpenCL kernels"
  VERBATIM)

target_sources(rewardc PRIVATE ${RC_OPENCL_SOURCES} ${RC_OPENCL_EMBEDDED})
target_include_directories(rewardc PRIVATE ${RC_OPENCL_DIR})
target_compile_definitions(rewardc PUBLIC RC_HAVE_OPENCL=1 PRIVATE CL_TARGET_OPENCL_VERSION=120)
target_link_libraries(rewardc PUBLIC ${RC_CLBLAST_TARGET} OpenCL::OpenCL)
