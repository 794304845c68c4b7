# airlock_bpf_skeleton(<name>)
# Compiles bpf/<name>.bpf.c with clang -target bpf (CO-RE, against the
# committed bpf/vmlinux/<arch>/vmlinux.h), strips DWARF (keeping .BTF, which
# CO-RE needs), and generates <name>.skel.h with `bpftool gen skeleton`.
# Defines the INTERFACE target airlock_bpf_<name> whose include directories
# hold the skeleton and bpf/ (for the shared <name>.h header). Its consumer,
# the one wrapper under userspace/kernel/, links it.
find_program(AIRLOCK_BPF_CLANG NAMES clang clang-19 clang-14 REQUIRED)
find_program(AIRLOCK_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(AIRLOCK_LLVM_STRIP NAMES llvm-strip llvm-strip-19 llvm-strip-14 REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.0)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(AIRLOCK_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(AIRLOCK_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "no BPF target arch for ${CMAKE_SYSTEM_PROCESSOR}")
endif()
set(AIRLOCK_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/${AIRLOCK_BPF_ARCH})
if(NOT EXISTS ${AIRLOCK_VMLINUX_DIR}/vmlinux.h)
  message(FATAL_ERROR "${AIRLOCK_VMLINUX_DIR}/vmlinux.h is missing: build the vmlinux_h target on a "
                      "${AIRLOCK_BPF_ARCH} machine with /sys/kernel/btf/vmlinux and commit it")
endif()

# Regenerates the committed vmlinux.h from the running kernel's BTF
# (`cmake --build build --target vmlinux_h`); CO-RE relocates field offsets at
# load time, so one header serves every kernel with BTF.
add_custom_target(vmlinux_h
  COMMAND sh -c "${AIRLOCK_BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${AIRLOCK_VMLINUX_DIR}/vmlinux.h.tmp && mv ${AIRLOCK_VMLINUX_DIR}/vmlinux.h.tmp ${AIRLOCK_VMLINUX_DIR}/vmlinux.h"
  COMMENT "Regenerating ${AIRLOCK_VMLINUX_DIR}/vmlinux.h from /sys/kernel/btf/vmlinux"
  VERBATIM)

function(airlock_bpf_skeleton name)
  set(src ${PROJECT_SOURCE_DIR}/bpf/${name}.bpf.c)
  set(outdir ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${outdir}/${name}.bpf.o)
  set(skel ${outdir}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${outdir}
    COMMAND ${AIRLOCK_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${AIRLOCK_BPF_ARCH}
            -Wall -Werror -I${AIRLOCK_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR}/bpf -c ${src} -o ${obj}
    COMMAND ${AIRLOCK_LLVM_STRIP} -g ${obj}
    COMMAND sh -c "${AIRLOCK_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/bpf/${name}.h ${AIRLOCK_VMLINUX_DIR}/vmlinux.h
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(airlock_bpf_${name}_skel DEPENDS ${skel})
  add_library(airlock_bpf_${name} INTERFACE)
  add_dependencies(airlock_bpf_${name} airlock_bpf_${name}_skel)
  # SYSTEM: the generated skeleton is C; the project's -Wconversion etc. are not for it.
  target_include_directories(airlock_bpf_${name} SYSTEM INTERFACE ${outdir})
  target_include_directories(airlock_bpf_${name} INTERFACE ${PROJECT_SOURCE_DIR}/bpf)
  target_link_libraries(airlock_bpf_${name} INTERFACE PkgConfig::LIBBPF)
endfunction()
