/* Internal: each backend constructor attaches the fair-turn lock of backend.h once it has
 * built the backend; ag_backend_free detaches it. */
#ifndef AG_BACKEND_TURNS_H
#define AG_BACKEND_TURNS_H

#include "anygpt/backend.h"

int ag_backend_turns_attach(ag_backend *be);
void ag_backend_turns_detach(ag_backend *be);

#endif
