/* The /v1 endpoint table: every method and path the gateway answers below its <Location>, the
 * role it takes, and its handler. floopy_dispatch answers 404, 405 (with Allow) and 403. */
#include <http_protocol.h>

#include "gateway/gateway.h"
#include "api.h"

const floopy_endpoint_t floopy_v1_endpoints[] = {
    { M_POST, "/chat/completions", FLOOPY_ROLE_ANY, floopy_handle_chat, NULL },
    { M_GET, "/models", FLOOPY_ROLE_ANY, floopy_handle_models, NULL },
    { M_GET, "/decisions", FLOOPY_ROLE_ANY, floopy_handle_decision_list, NULL },
    { M_GET, "/decisions/{id}", FLOOPY_ROLE_ANY, floopy_handle_decision, NULL },
    { M_GET, "/export/decisions", FLOOPY_ROLE_ANY, floopy_handle_export, NULL },
    { M_GET, "/audit-events", FLOOPY_ROLE_ADMIN, floopy_handle_audit_list,
      "reading audit events" },
    { M_POST, "/routing/explain", FLOOPY_ROLE_ANY, floopy_handle_explain, NULL },
    { M_POST, "/feedback", FLOOPY_ROLE_ANY, floopy_handle_feedback, NULL },
    { M_GET, "/constraints", FLOOPY_ROLE_ANY, floopy_handle_constraints_get, NULL },
    { M_PUT, "/constraints", FLOOPY_ROLE_ADMIN, floopy_handle_constraints_put,
      "changing constraints" },
    { M_GET, "/reports/savings", FLOOPY_ROLE_ANY, floopy_handle_savings, NULL },
    { M_GET, "/experiments", FLOOPY_ROLE_ANY, floopy_handle_experiment_list, NULL },
    { M_POST, "/experiments", FLOOPY_ROLE_ADMIN, floopy_handle_experiment_start,
      "starting an experiment" },
    { M_GET, "/experiments/{id}", FLOOPY_ROLE_ANY, floopy_handle_experiment, NULL },
    { M_POST, "/experiments/{id}/rollback", FLOOPY_ROLE_ADMIN,
      floopy_handle_experiment_rollback, "rolling back an experiment" },
    { 0, NULL, 0, NULL, NULL }
};
