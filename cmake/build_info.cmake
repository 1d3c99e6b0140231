# The commit is read once, when the build is configured: `credvault version`
# names it, and a tree with uncommitted changes says so.
set(CV_GIT_COMMIT unknown)
find_program(CV_GIT git)
if(CV_GIT)
  execute_process(COMMAND ${CV_GIT} -C ${PROJECT_SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE cv_commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE cv_git_rc ERROR_QUIET)
  if(cv_git_rc EQUAL 0 AND cv_commit)
    set(CV_GIT_COMMIT ${cv_commit})
    execute_process(COMMAND ${CV_GIT} -C ${PROJECT_SOURCE_DIR} diff-index --quiet HEAD --
                    RESULT_VARIABLE cv_dirty ERROR_QUIET)
    if(NOT cv_dirty EQUAL 0)
      string(APPEND CV_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()
