/* fuzz_pgproto_backend.c - the proxy's parser of backend messages
 * (daemon/pgproto.c); the body is fuzz_pgproto_stream.h. */
#define CHECK_MESSAGE pgp_check_backend
#include "fuzz_pgproto_stream.h"
