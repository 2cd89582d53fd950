/* fuzz_pgproto_frontend.c - the proxy's parser of frontend messages
 * (daemon/pgproto.c); the body is fuzz_pgproto_stream.h. */
#define CHECK_MESSAGE pgp_check_frontend
#include "fuzz_pgproto_stream.h"
