/* GET /models: the routes and the configured provider/models, in OpenAI's list shape. */
#include "config/config.h"
#include "api.h"
#include <scoreboard.h>

static json_t *model_entry(const char *id, apr_time_t created)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(apr_time_sec(created)));
    json_object_set_new(o, "owned_by", json_string("floopy"));
    return o;
}

int floopy_handle_models(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    const fl_catalog_t *cat = floopy_srv(r->server)->catalog;
    json_t *list = json_object(), *data = json_array();
    apr_time_t started = ap_scoreboard_image ? ap_scoreboard_image->global->restart_time : 0;
    int i;
    for (i = 0; i < cat->route_list->nelts; i++) {
        json_array_append_new(data, model_entry(APR_ARRAY_IDX(cat->route_list, i,
                                                              fl_route_t *)->name, started));
    }
    for (i = 0; i < cat->model_list->nelts; i++) {
        json_array_append_new(data, model_entry(APR_ARRAY_IDX(cat->model_list, i,
                                                              fl_model_t *)->id, started));
    }
    json_object_set_new(list, "object", json_string("list"));
    json_object_set_new(list, "data", data);
    return floopy_send_json(r, 200, list);
}

