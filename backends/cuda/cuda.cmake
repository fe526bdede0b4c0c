# The CUDA backend (cuBLAS for matrix products, kernels in backends/cuda/*.cu).
# Included by the top-level CMakeLists.txt when -DRC_CUDA=ON, after the
# rewardc library target exists.

# CUDA 13 dropped the pre-Turing targets; Ampere and Hopper cover the machines
# this is meant for. Override with -DCMAKE_CUDA_ARCHITECTURES=... (e.g. 90 or
# native to build faster on the machine itself).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB RC_CUDA_SOURCES CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/backends/cuda/*.c
     ${PROJECT_SOURCE_DIR}/backends/cuda/*.cu)
target_sources(rewardc PRIVATE ${RC_CUDA_SOURCES})

# The library target was created before CUDA was enabled, so its CUDA
# properties are set here. One shared CUDA runtime for the whole program:
# the CUDA::cudart we link, not a second static copy added by nvcc.
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
set_target_properties(rewardc PROPERTIES
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_RUNTIME_LIBRARY Shared
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_EXTENSIONS OFF)

# The top level adds -Wall -Wextra (and sanitizer flags) for every language;
# nvcc takes host-compiler warnings through -Xcompiler, so keep those options
# away from .cu files and pass the warnings on properly.
get_target_property(_rc_options rewardc COMPILE_OPTIONS)
if(_rc_options)
  set(_rc_guarded_options "")
  foreach(_rc_option IN LISTS _rc_options)
    list(APPEND _rc_guarded_options "$<$<NOT:$<COMPILE_LANGUAGE:CUDA>>:${_rc_option}>")
  endforeach()
  set_property(TARGET rewardc PROPERTY COMPILE_OPTIONS "${_rc_guarded_options}")
endif()
target_compile_options(rewardc PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)

string(REPLACE ";" "," _rc_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(rewardc PUBLIC RC_HAVE_CUDA=1)
target_compile_definitions(rewardc PRIVATE RC_CUDA_ARCHS="${_rc_cuda_archs}")
target_include_directories(rewardc PRIVATE ${PROJECT_SOURCE_DIR}/backends/cuda)
target_link_libraries(rewardc PUBLIC CUDA::cudart CUDA::cublas)

# No a*b+c contraction into FMA: the CPU reference (baseline x86-64) rounds
# each product, and the conformance bounds are tight enough to see the difference.
target_compile_options(rewardc PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false>)
