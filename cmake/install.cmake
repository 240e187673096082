# cmake/install.cmake - what `cmake --install build [--prefix P]` (and
# `make install [PREFIX=P] [DESTDIR=D]`) puts where:
#   bin/wardfs                          the binary
#   lib/wardfs/libfuse3.so.*            the project-local libfuse, if used
#   sbin/mount.wardfs, sbin/mount.fuse.wardfs
#                                       mount(8) helpers (links to the
#                                       binary; mount(8) only looks in /sbin,
#                                       see WARDFS_HELPER_DIR)
#   share/man/man{1,5,8}/               man pages from docs/man/
#   (PAM's module dir)/pam_wardfs.so    the password-change PAM module (pam/,
#                                       WARDFS_PAM_DIR; absolute, under DESTDIR)
#   share/bash-completion/completions/wardfs
#   lib/systemd/system/wardfs@.service  template unit, @BINDIR@ substituted
#   /etc/wardfs/policy                  etc/policy.example, only if absent
include(GNUInstallDirs)

set(WARDFS_HELPER_DIR "${CMAKE_INSTALL_SBINDIR}" CACHE STRING
    "where the mount helpers go (relative to the prefix, or absolute such as /sbin)")
set(WARDFS_SYSTEMD_DIR "lib/systemd/system" CACHE STRING
    "where the systemd unit goes (relative to the prefix, or absolute)")
set(WARDFS_SYSCONF_DIR "/etc/wardfs" CACHE STRING "where the policy goes (under DESTDIR)")

# A project-local libfuse goes to lib/wardfs/ and the binary finds it there
# relative to itself ($ORIGIN is the real path, so the mount helper links
# work too); a system libfuse needs no rpath.
if(WARDFS_BUNDLED_FUSE)
	set_target_properties(wardfs PROPERTIES INSTALL_RPATH
		"$ORIGIN/../${CMAKE_INSTALL_LIBDIR}/wardfs")
	file(GLOB _fuse_libs ${FUSE3_LIBRARY_DIRS}/libfuse3.so.*)
	install(FILES ${_fuse_libs} DESTINATION ${CMAKE_INSTALL_LIBDIR}/wardfs)
endif()
install(TARGETS wardfs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The helpers are symlinks: relative when they live under the prefix, so a
# DESTDIR or relocated tree stays consistent.
install(CODE "
  set(_bindir \"${CMAKE_INSTALL_BINDIR}\")
  set(_helperdir \"${WARDFS_HELPER_DIR}\")
  if(IS_ABSOLUTE \"\${_helperdir}\")
    set(_dir \"\$ENV{DESTDIR}\${_helperdir}\")
    set(_target \"\${CMAKE_INSTALL_PREFIX}/\${_bindir}/wardfs\")
  else()
    set(_dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${_helperdir}\")
    file(RELATIVE_PATH _target \"/p/\${_helperdir}\" \"/p/\${_bindir}/wardfs\")
  endif()
  file(MAKE_DIRECTORY \"\${_dir}\")
  foreach(_name mount.wardfs mount.fuse.wardfs)
    message(STATUS \"Installing: \${_dir}/\${_name} -> \${_target}\")
    file(REMOVE \"\${_dir}/\${_name}\")
    file(CREATE_LINK \"\${_target}\" \"\${_dir}/\${_name}\" SYMBOLIC)
  endforeach()
")

foreach(_section 1 5 8)
	file(GLOB _pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.${_section})
	install(FILES ${_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/etc/bash-completion/wardfs
	DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)

get_filename_component(_wardfs_etc_parent "${WARDFS_SYSCONF_DIR}" DIRECTORY)

# The unit names the installed binary: substitute @BINDIR@ at install time,
# when the final prefix is known.
install(CODE "
  set(_unitdir \"${WARDFS_SYSTEMD_DIR}\")
  if(NOT IS_ABSOLUTE \"\${_unitdir}\")
    set(_unitdir \"\${CMAKE_INSTALL_PREFIX}/\${_unitdir}\")
  endif()
  foreach(_name wardfs@.service wardfs-prune.service wardfs-prune.timer)
    file(READ \"${PROJECT_SOURCE_DIR}/etc/systemd/\${_name}\" _unit)
    string(REPLACE \"@BINDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" _unit \"\${_unit}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${_unitdir}/\${_name}\")
    file(WRITE \"\$ENV{DESTDIR}\${_unitdir}/\${_name}\" \"\${_unit}\")
  endforeach()
  # the daily prune where systemd does not run, and the log's rotation
  file(READ \"${PROJECT_SOURCE_DIR}/etc/cron/wardfs-prune\" _cron)
  string(REPLACE \"@BINDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" _cron \"\${_cron}\")
  set(_etcroot \"\$ENV{DESTDIR}${_wardfs_etc_parent}\")
  file(MAKE_DIRECTORY \"\${_etcroot}/cron.daily\" \"\${_etcroot}/logrotate.d\")
  message(STATUS \"Installing: \${_etcroot}/cron.daily/wardfs-prune\")
  file(WRITE \"\${_etcroot}/cron.daily/wardfs-prune\" \"\${_cron}\")
  file(CHMOD \"\${_etcroot}/cron.daily/wardfs-prune\" PERMISSIONS OWNER_READ OWNER_WRITE
       OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  message(STATUS \"Installing: \${_etcroot}/logrotate.d/wardfs\")
  file(COPY \"${PROJECT_SOURCE_DIR}/etc/logrotate/wardfs\" DESTINATION \"\${_etcroot}/logrotate.d\")
")

# Never overwrite an admin's policy. (file(COPY) does not prepend DESTDIR
# the way file(INSTALL) does.)
install(CODE "
  set(_etc \"\$ENV{DESTDIR}${WARDFS_SYSCONF_DIR}\")
  file(MAKE_DIRECTORY \"\${_etc}/mounts\")
  if(EXISTS \"\${_etc}/policy\")
    message(STATUS \"Keeping: \${_etc}/policy (exists)\")
  else()
    message(STATUS \"Installing: \${_etc}/policy\")
    file(COPY \"${PROJECT_SOURCE_DIR}/etc/policy.example\" DESTINATION \"\${_etc}\"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(RENAME \"\${_etc}/policy.example\" \"\${_etc}/policy\")
  endif()
")
