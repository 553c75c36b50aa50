/* jansson allocator that wipes on free.  Blocks come from plain malloc,
 * so text that jansson hands out (json_dumps) may still be released with
 * free() by its callers; jansson's own frees clear the whole block first
 * (malloc_usable_size gives its size).  One explicit_bzero per free is
 * small next to parsing the JSON that filled the block. */
#include "util/jsonwipe.h"
#include "util/xalloc.h"

#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void *s_malloc(size_t n)
{
    return xmalloc(n);
}

static void s_free(void *ptr)
{
    if (ptr == NULL)
        return;
    explicit_bzero(ptr, malloc_usable_size(ptr));
    free(ptr);
}

void pf_json_wipe_init(void)
{
    json_set_alloc_funcs(s_malloc, s_free);
}
