/* Environment variable names: the syntax, and the family refused whatever a
 * template says — exact names, prefixes, and the near misses that stay
 * ordinary credentials. */
#include <check.h>
#include <stdlib.h>

#include "credvault/envname.h"
#include "cv_test_suite.h"

START_TEST(syntax)
{
    const char *bad[] = {"", "1A", "A-B", "A B", "A=B", "É", "A\xc3\xa9", "-", NULL};
    for (const char *const *s = bad; *s; s++) ck_assert_msg(!cv_env_name_valid(*s), "accepted '%s'", *s);
    ck_assert(!cv_env_name_valid(NULL));
    const char *good[] = {"A", "_", "a_b", "GITHUB_TOKEN", "_JAVA_OPTIONS", "X1", NULL};
    for (const char *const *s = good; *s; s++) ck_assert_msg(cv_env_name_valid(*s), "refused '%s'", *s);
}
END_TEST

START_TEST(forbidden_family)
{
    const char *refused[] = {"SHELLOPTS", "BASHOPTS", "PS4", "PS1", "PROMPT_COMMAND", "BASH_ENV", "BASH_FUNC_x",
                             "ENV", "IFS", "PATH", "HOME", "CDPATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
                             "DYLD_INSERT_LIBRARIES", "MALLOC_CHECK_", "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH",
                             "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "TMPDIR", "JDK_JAVA_OPTIONS",
                             "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH", "PERL5OPT", "PERL5LIB", "PERLLIB",
                             "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONWARNINGS", "NODE_OPTIONS",
                             "NODE_PATH", "RUBYOPT", "RUBYLIB", "LUA_INIT", "DOTNET_STARTUP_HOOKS",
                             "OPENSSL_CONF", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_ASKPASS", "GIT_CONFIG_GLOBAL",
                             "SSH_ASKPASS", "BROWSER", "EDITOR", "PAGER", "LESSOPEN", NULL};
    for (const char *const *s = refused; *s; s++) {
        const char *why = cv_env_name_forbidden(*s);
        ck_assert_msg(why != NULL && why[0] != '\0', "%s is not refused", *s);
    }
    /* ordinary credentials that merely contain the letters */
    const char *ordinary[] = {"GITHUB_TOKEN", "GITHUB_ORG", "OLD_PRELOAD", "XLD_PRELOAD", "MALLOC", "MY_PATH",
                              "PATHS", "HOMER", "ENVIRONMENT", "AWS_PROFILE", "POSTGRES_CONNECTION_STRING",
                              "PGSSLMODE", "MCP_PS4", "PS", "GI", "OPENAI_API_KEY", NULL};
    for (const char *const *s = ordinary; *s; s++)
        ck_assert_msg(cv_env_name_forbidden(*s) == NULL, "%s is refused", *s);
    ck_assert_ptr_null(cv_env_name_forbidden(NULL));
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "core_envname"};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(syntax, forbidden_family));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
