/* The template catalog: templates with their integrations, required and
 * optional env keys and evidence types, plus the integration table that maps
 * env names to integrations. Loaded once, checked strictly, read-only after. */
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

extern const char cv_catalog_builtin[];
extern const size_t cv_catalog_builtin_len;

struct cv_catalog {
    json_t *doc;
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

static cv_result check(struct cv_catalog *c)
{
    c->templates = json_object_get(c->doc, "templates");
    c->integrations = json_object_get(c->doc, "integrations");
    CV_ENSURE(json_is_array(c->templates) && json_is_array(c->integrations), CV_ERR_INPUT,
              "template catalog needs 'templates' and 'integrations' arrays");
    size_t i;
    json_t *v;
    json_array_foreach(c->integrations, i, v) {
        CV_ENSURE(json_is_string(json_object_get(v, "name")) && string_array(json_object_get(v, "keys")) &&
                      json_array_size(json_object_get(v, "keys")) > 0,
                  CV_ERR_INPUT, "template catalog: integration %zu needs a name and keys", i);
    }
    json_array_foreach(c->templates, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        CV_ENSURE(cv_template_id_valid(id) && json_is_string(json_object_get(v, "name")) &&
                      json_is_string(json_object_get(v, "description")) &&
                      string_array(json_object_get(v, "integrations")) &&
                      string_array(json_object_get(v, "requiredEnv")) &&
                      string_array(json_object_get(v, "optionalEnv")) &&
                      string_array(json_object_get(v, "evidenceTypes")),
                  CV_ERR_INPUT,
                  "template catalog: template %zu needs id (a template id: letters, digits, '.', '_', '-'), name, description, integrations, requiredEnv, "
                  "optionalEnv and evidenceTypes",
                  i);
        for (size_t j = 0; j < i; j++) {
            const char *other = json_string_value(json_object_get(json_array_get(c->templates, j), "id"));
            CV_ENSURE(strcmp(id, other) != 0, CV_ERR_INPUT, "template catalog: duplicate template id %s", id);
        }
        json_t *allowed = json_object_get(v, "allowedLoaderEnv");
        CV_ENSURE(!allowed || string_array(allowed), CV_ERR_INPUT,
                  "template catalog: allowedLoaderEnv of %s must be an array of names", id);
    }
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
    cv_result r = check(c);
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

json_t *cv_catalog_configured_integrations(const struct cv_catalog *c, json_t *env)
{
    json_t *out = json_array();
    if (!out) return NULL;
    size_t i, j;
    json_t *integ, *key;
    json_array_foreach(c->integrations, i, integ) {
        int all = 1;
        json_array_foreach(json_object_get(integ, "keys"), j, key) {
            json_t *val = json_object_get(env, json_string_value(key));
            if (!json_is_string(val) || json_string_length(val) == 0) all = 0;
        }
        if (all) json_array_append(out, json_object_get(integ, "name"));
    }
    return out;
}

int cv_catalog_allows_name(json_t *tmpl, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(tmpl, "allowedLoaderEnv"), i, v) {
        if (strcmp(json_string_value(v), name) == 0) return 1;
    }
    return 0;
}

cv_result cv_templates_list(struct cv_app *app, const struct cv_principal *p, json_t **data)
{
    (void)p; /* every authenticated role may read the catalog: it holds no secret */
    json_t *arr = json_array();
    CV_ENSURE(arr != NULL, CV_ERR_MEMORY, "out of memory");
    size_t i;
    json_t *t;
    json_array_foreach(app->catalog->templates, i, t) {
        json_t *copy = json_deep_copy(t);
        json_t *integs = json_object_get(copy, "integrations");
        /* expand each integration with the env keys that configure it */
        json_t *expanded = json_array();
        size_t j;
        json_t *name;
        json_array_foreach(integs, j, name) {
            json_t *keys = NULL;
            size_t k;
            json_t *integ;
            json_array_foreach(app->catalog->integrations, k, integ) {
                if (json_equal(json_object_get(integ, "name"), name)) keys = json_object_get(integ, "keys");
            }
            json_array_append_new(expanded, json_pack("{s:O, s:O?}", "name", name, "keys", keys));
        }
        json_object_set_new(copy, "integrations", expanded);
        json_object_del(copy, "allowedLoaderEnv");
        json_array_append_new(arr, copy);
    }
    *data = json_pack("{s:o}", "templates", arr);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}
