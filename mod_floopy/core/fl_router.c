#include "fl_router.h"

double fl_router_blended_price(const fl_model_t *m)
{
    return (3.0 * m->input_per_m + m->output_per_m) / 4.0;
}

void fl_router_choose(const fl_route_t *route, fl_decision_t *d)
{
    int i, best = 0;
    double min_price = -1;
    json_t *prices = json_object();

    for (i = 0; i < route->candidates->nelts; i++) {
        const fl_model_t *m = APR_ARRAY_IDX(route->candidates, i, fl_model_t *);
        double price = fl_router_blended_price(m);
        json_object_set_new(prices, m->id, json_real(price));
        if (min_price < 0 || price < min_price) {
            min_price = price;
            best = i;
        }
    }
    for (i = 0; i < route->candidates->nelts; i++) {
        const fl_model_t *m = APR_ARRAY_IDX(route->candidates, i, fl_model_t *);
        double price = fl_router_blended_price(m);
        /* The cheapest scores 1; a candidate twice as dear scores 0.5. */
        double score = price > 0 ? min_price / price : 1.0;
        if (i == best) {
            d->chosen = m;
            d->chosen_score = score;
        }
        else {
            fl_alternative_t *alt = apr_array_push(d->alternatives);
            alt->model = m;
            alt->score = score;
            alt->excluded_by = NULL;
        }
    }
    d->route = route->name;
    d->pinned = 0;
    d->phase = "day0";
    /* No outcome has been observed yet: no signal mass stands behind the choice. */
    d->confidence = 0.0;
    json_object_set_new(d->signals, "policy", json_string("cheapest"));
    json_object_set_new(d->signals, "observations", json_integer(0));
    json_object_set_new(d->signals, "blended_price_per_mtok", prices);
    json_object_set_new(d->signals, "default",
                        json_string(APR_ARRAY_IDX(route->candidates, 0, fl_model_t *)->id));
}

void fl_router_pin(fl_model_t *m, fl_decision_t *d)
{
    d->chosen = m;
    d->chosen_score = 1.0;
    d->route = m->id;
    d->pinned = 1;
    d->phase = "pinned";
    d->confidence = 0.0;
    json_object_set_new(d->signals, "policy", json_string("pinned"));
    json_object_set_new(d->signals, "priced", json_boolean(m->priced));
}
