/* The template catalog (data/mcp-templates.json): every variable an MCP
 * server reads with its label and description, the integration table (which
 * names, by which route, configure which integration) and the templates in
 * the shape the platform's frontend reads. Loaded once, checked strictly,
 * read-only after. */
#include <stdlib.h>
#include <string.h>

#include "credvault/envname.h"
#include "domain/domain.h"

#define CV_CUSTOM_PREFIX_MAX_BYTES 64

extern const char cv_catalog_builtin[];
extern const size_t cv_catalog_builtin_len;

struct cv_catalog {
    json_t *doc;
    json_t *variables;    /* object: name -> {label, description, file?} */
    json_t *templates;    /* array */
    json_t *integrations; /* array */
};

static int string_array(json_t *a)
{
    if (!json_is_array(a)) return 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v)) return 0;
    return 1;
}

static int nonempty_string(json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

static int array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* Only the members in `known`, so a misspelt one in the file is an error at start. */
static int members_known(json_t *obj, const char *const *known, size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (size_t i = 0; i < n; i++) ok |= strcmp(k, known[i]) == 0;
        if (!ok) return 0;
    }
    return 1;
}

#define KNOWN(obj, ...)                                                                                        \
    members_known((obj), (const char *const[]){__VA_ARGS__},                                                   \
                  sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static cv_result check_variables(struct cv_catalog *c)
{
    CV_ENSURE(json_is_object(c->variables), CV_ERR_INPUT, "template catalog needs a 'variables' object");
    const char *k;
    json_t *v;
    json_object_foreach(c->variables, k, v) {
        CV_ENSURE(cv_env_name_valid(k), CV_ERR_INPUT,
                  "template catalog: variable %.64s is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", k);
        const char *why = cv_env_name_forbidden(k);
        CV_ENSURE(!why, CV_ERR_INPUT, "template catalog: variable %.64s %s; no template may accept it", k, why);
        json_t *file = json_object_get(v, "file");
        CV_ENSURE(json_is_object(v) && KNOWN(v, "label", "description", "file") &&
                      nonempty_string(json_object_get(v, "label")) &&
                      nonempty_string(json_object_get(v, "description")) && (!file || json_is_boolean(file)),
                  CV_ERR_INPUT, "template catalog: variable %.64s needs a label and a description", k);
    }
    return CV_OK;
}

/* Every name a template or integration uses is a described variable. */
static cv_result check_names(struct cv_catalog *c, json_t *names, const char *what, const char *owner)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) {
        CV_ENSURE(json_object_get(c->variables, json_string_value(n)) != NULL, CV_ERR_INPUT,
                  "template catalog: %s of %.64s names %.64s, which 'variables' does not describe", what, owner,
                  json_string_value(n));
    }
    return CV_OK;
}

static cv_result check_integrations(struct cv_catalog *c)
{
    CV_ENSURE(json_is_array(c->integrations), CV_ERR_INPUT, "template catalog needs an 'integrations' array");
    size_t i;
    json_t *v;
    json_array_foreach(c->integrations, i, v) {
        json_t *routes = json_object_get(v, "routes");
        CV_ENSURE(KNOWN(v, "name", "routes") && nonempty_string(json_object_get(v, "name")) &&
                      json_is_array(routes) && json_array_size(routes) > 0,
                  CV_ERR_INPUT, "template catalog: integration %zu needs a name and routes", i);
        const char *name = json_string_value(json_object_get(v, "name"));
        for (size_t j = 0; j < i; j++)
            CV_ENSURE(strcmp(name, json_string_value(json_object_get(json_array_get(c->integrations, j), "name"))),
                      CV_ERR_INPUT, "template catalog: duplicate integration %.64s", name);
        size_t r;
        json_t *route;
        json_array_foreach(routes, r, route) {
            json_t *keys = json_object_get(route, "keys");
            CV_ENSURE(KNOWN(route, "name", "keys") && nonempty_string(json_object_get(route, "name")) &&
                          string_array(keys) && json_array_size(keys) > 0,
                      CV_ERR_INPUT, "template catalog: each route of integration %.64s needs a name and keys", name);
            CV_GUARD(check_names(c, keys, "a route", name));
        }
    }
    return CV_OK;
}

/* configGroups, when present, place each optional name in exactly one group:
 * a frontend that renders groups shows no name outside them. */
static cv_result check_groups(json_t *t, const char *id)
{
    json_t *groups = json_object_get(t, "configGroups"), *optional = json_object_get(t, "optionalEnv");
    if (!groups) return CV_OK;
    CV_ENSURE(json_is_array(groups), CV_ERR_INPUT, "template catalog: configGroups of %s must be an array", id);
    size_t placed = 0, i, j;
    json_t *g, *k;
    json_array_foreach(groups, i, g) {
        CV_ENSURE(KNOWN(g, "name", "keys") && nonempty_string(json_object_get(g, "name")) &&
                      string_array(json_object_get(g, "keys")),
                  CV_ERR_INPUT, "template catalog: each configGroup of %s needs a name and keys", id);
        json_array_foreach(json_object_get(g, "keys"), j, k) {
            CV_ENSURE(array_has(optional, json_string_value(k)), CV_ERR_INPUT,
                      "template catalog: configGroup %s of %s names %.64s, which is not in its optionalEnv",
                      json_string_value(json_object_get(g, "name")), id, json_string_value(k));
            placed++;
        }
    }
    CV_ENSURE(placed == json_array_size(optional), CV_ERR_INPUT,
              "template catalog: the configGroups of %s must place each optionalEnv name exactly once", id);
    return CV_OK;
}

/* customEnv: patterns "PREFIX*" for names a template accepts beyond its
 * required and optional ones. The prefix is a name of at least two
 * characters ending in '_', so a pattern cannot reach a family that
 * cv_env_name_forbidden refuses by prefix (that is checked again per name). */
static cv_result check_custom(json_t *t, const char *id)
{
    json_t *custom = json_object_get(t, "customEnv");
    if (!custom) return CV_OK;
    CV_ENSURE(string_array(custom), CV_ERR_INPUT, "template catalog: customEnv of %s must be an array of patterns",
              id);
    size_t i;
    json_t *p;
    json_array_foreach(custom, i, p) {
        const char *s = json_string_value(p);
        size_t n = strlen(s);
        char prefix[CV_CUSTOM_PREFIX_MAX_BYTES + 1];
        CV_ENSURE(n >= 3 && n <= CV_CUSTOM_PREFIX_MAX_BYTES && s[n - 1] == '*' && s[n - 2] == '_', CV_ERR_INPUT,
                  "template catalog: customEnv pattern '%.64s' of %s must be a name prefix ending in '_' "
                  "followed by '*', such as \"ACME_*\"",
                  s, id);
        memcpy(prefix, s, n - 1);
        prefix[n - 1] = '\0';
        CV_ENSURE(cv_env_name_valid(prefix), CV_ERR_INPUT,
                  "template catalog: customEnv pattern '%.64s' of %s is not a name prefix ([A-Za-z_][A-Za-z0-9_]*)", s,
                  id);
        const char *why = cv_env_name_forbidden(prefix);
        CV_ENSURE(!why, CV_ERR_INPUT, "template catalog: customEnv pattern '%.64s' of %s covers names that %s", s, id,
                  why);
    }
    return CV_OK;
}

static cv_result check_template(struct cv_catalog *c, size_t i, json_t *v)
{
    const char *id = json_string_value(json_object_get(v, "id"));
    CV_ENSURE(KNOWN(v, "id", "name", "description", "transport", "command", "args", "capabilities", "integrations",
                    "requiredEnv", "optionalEnv", "customEnv", "configGroups", "configNote", "evidenceTypes",
                    "allowedLoaderEnv"),
              CV_ERR_INPUT, "template catalog: template %zu has an unknown member", i);
    CV_ENSURE(cv_template_id_valid(id) && json_is_string(json_object_get(v, "name")) &&
                  json_is_string(json_object_get(v, "description")) &&
                  nonempty_string(json_object_get(v, "transport")) &&
                  nonempty_string(json_object_get(v, "command")) && string_array(json_object_get(v, "args")) &&
                  string_array(json_object_get(v, "capabilities")) &&
                  string_array(json_object_get(v, "integrations")) &&
                  string_array(json_object_get(v, "requiredEnv")) &&
                  string_array(json_object_get(v, "optionalEnv")) &&
                  string_array(json_object_get(v, "evidenceTypes")),
              CV_ERR_INPUT,
              "template catalog: template %zu needs id (letters, digits, '.', '_', '-'), name, description, transport, command, args, capabilities, "
              "integrations, requiredEnv, optionalEnv and evidenceTypes",
              i);
    for (size_t j = 0; j < i; j++) {
        const char *other = json_string_value(json_object_get(json_array_get(c->templates, j), "id"));
        CV_ENSURE(strcmp(id, other) != 0, CV_ERR_INPUT, "template catalog: duplicate template id %s", id);
    }
    json_t *note = json_object_get(v, "configNote");
    CV_ENSURE(!note || json_is_string(note), CV_ERR_INPUT, "template catalog: configNote of %s must be a string", id);
    json_t *required = json_object_get(v, "requiredEnv"), *optional = json_object_get(v, "optionalEnv");
    CV_GUARD(check_names(c, required, "requiredEnv", id));
    CV_GUARD(check_names(c, optional, "optionalEnv", id));
    size_t k;
    json_t *n;
    json_array_foreach(optional, k, n) {
        CV_ENSURE(!array_has(required, json_string_value(n)), CV_ERR_INPUT,
                  "template catalog: %s lists %.64s as both required and optional", id, json_string_value(n));
    }
    json_array_foreach(json_object_get(v, "integrations"), k, n) {
        int known = 0;
        size_t m;
        json_t *integ;
        json_array_foreach(c->integrations, m, integ) known |= json_equal(json_object_get(integ, "name"), n);
        CV_ENSURE(known, CV_ERR_INPUT, "template catalog: %s names integration %.64s, which the table lacks", id,
                  json_string_value(n));
    }
    CV_GUARD(check_groups(v, id));
    /* an allowance that no longer exists: say so at start rather than ignore it */
    CV_ENSURE(!json_object_get(v, "allowedLoaderEnv"), CV_ERR_INPUT,
              "template catalog: %s has allowedLoaderEnv, which is no longer honoured: names that change how "
              "programs load or run are refused whatever a template says (docs/workload.md); remove it",
              id);
    CV_GUARD(check_custom(v, id));
    return CV_OK;
}

static cv_result check(struct cv_catalog *c)
{
    CV_ENSURE(KNOWN(c->doc, "variables", "integrations", "templates"), CV_ERR_INPUT,
              "template catalog: only 'variables', 'integrations' and 'templates' may appear at the top");
    c->variables = json_object_get(c->doc, "variables");
    c->templates = json_object_get(c->doc, "templates");
    c->integrations = json_object_get(c->doc, "integrations");
    CV_GUARD(check_variables(c));
    CV_GUARD(check_integrations(c));
    CV_ENSURE(json_is_array(c->templates), CV_ERR_INPUT, "template catalog needs a 'templates' array");
    size_t i;
    json_t *v;
    json_array_foreach(c->templates, i, v) CV_GUARD(check_template(c, i, v));
    return CV_OK;
}

cv_result cv_catalog_load(const char *file, struct cv_catalog **out)
{
    struct cv_catalog *c = calloc(1, sizeof(*c));
    CV_ENSURE(c != NULL, CV_ERR_MEMORY, "out of memory");
    json_error_t err;
    if (file) c->doc = json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    else c->doc = json_loadb(cv_catalog_builtin, cv_catalog_builtin_len, JSON_REJECT_DUPLICATES, &err);
    if (!c->doc) {
        free(c);
        CV_BAIL(CV_ERR_INPUT, "template catalog %s: %s (line %d)", file ? file : "(built in)", err.text, err.line);
    }
    cv_result r = json_is_object(c->doc) ? check(c) : cv_fail(CV_ERR_INPUT, "template catalog must be an object");
    if (cv_failed(r)) {
        cv_catalog_free(c);
        return r;
    }
    *out = c;
    return CV_OK;
}

void cv_catalog_free(struct cv_catalog *c)
{
    if (!c) return;
    json_decref(c->doc);
    free(c);
}

json_t *cv_catalog_template(const struct cv_catalog *c, const char *template_id)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->templates, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "id")), template_id) == 0) return v;
    }
    return NULL;
}

static int route_complete(json_t *route, json_t *env)
{
    size_t j;
    json_t *key;
    json_array_foreach(json_object_get(route, "keys"), j, key) {
        size_t len = 0;
        if (!cv_env_value(json_object_get(env, json_string_value(key)), &len, NULL) || len == 0) return 0;
    }
    return 1;
}

json_t *cv_catalog_configured_integrations(const struct cv_catalog *c, json_t *env)
{
    json_t *out = json_array();
    if (!out) return NULL;
    size_t i, r;
    json_t *integ, *route;
    json_array_foreach(c->integrations, i, integ) {
        int any = 0;
        json_array_foreach(json_object_get(integ, "routes"), r, route) any |= route_complete(route, env);
        if (any) json_array_append(out, json_object_get(integ, "name"));
    }
    return out;
}

int cv_catalog_allows_name(json_t *tmpl, const char *name)
{
    if (array_has(json_object_get(tmpl, "requiredEnv"), name) || array_has(json_object_get(tmpl, "optionalEnv"), name))
        return 1;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(tmpl, "customEnv"), i, v) {
        size_t n = json_string_length(v) - 1; /* without the '*' */
        if (strncmp(json_string_value(v), name, n) == 0 && name[n] != '\0') return 1;
    }
    return 0;
}

/* One template as the API shows it: optionalEnv as {key,label,description}
 * (and "file":true for names that hold a path), integrations with their routes. */
static json_t *template_doc(const struct cv_catalog *c, json_t *t)
{
    json_t *copy = json_deep_copy(t), *optional = json_array(), *integs = json_array();
    if (!copy || !optional || !integs) goto fail;
    size_t i, k;
    json_t *name, *integ;
    json_array_foreach(json_object_get(t, "optionalEnv"), i, name) {
        json_t *var = json_object_get(c->variables, json_string_value(name));
        json_t *e = json_pack("{s:O, s:O, s:O}", "key", name, "label", json_object_get(var, "label"), "description",
                              json_object_get(var, "description"));
        if (!e) goto fail;
        if (json_is_true(json_object_get(var, "file"))) json_object_set_new(e, "file", json_true());
        json_array_append_new(optional, e);
    }
    json_array_foreach(json_object_get(t, "integrations"), i, name) {
        json_array_foreach(c->integrations, k, integ) {
            if (json_equal(json_object_get(integ, "name"), name)) json_array_append(integs, integ);
        }
    }
    json_object_set_new(copy, "optionalEnv", optional);
    json_object_set_new(copy, "integrations", integs);
    return copy;
fail:
    json_decref(copy);
    json_decref(optional);
    json_decref(integs);
    return NULL;
}

cv_result cv_templates_list(struct cv_app *app, const struct cv_principal *p, json_t **items, json_t **meta)
{
    (void)p; /* every authenticated role may read the catalog: it holds no secret */
    *items = *meta = NULL;
    json_t *arr = json_array();
    CV_ENSURE(arr != NULL, CV_ERR_MEMORY, "out of memory");
    size_t i;
    json_t *t;
    json_array_foreach(app->catalog->templates, i, t) {
        json_t *doc = template_doc(app->catalog, t);
        if (!doc || json_array_append_new(arr, doc) != 0) {
            json_decref(arr);
            CV_BAIL(CV_ERR_MEMORY, "out of memory");
        }
    }
    size_t n = json_array_size(arr);
    /* the whole catalog in one page: it is small and has no paging parameters */
    return cv_page_meta(arr, n, (unsigned)n, 0, items, meta);
}
