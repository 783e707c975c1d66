/* Thread-local storage of the last error message of the spikeloc C ABI. */
#include <string.h>
#include "spikeloc.h"

static _Thread_local char spk_error_buffer[1024];

const char *spk_last_error(void) { return spk_error_buffer; }

void spk_set_error(const char *message) {
    if (message == NULL) {
        spk_error_buffer[0] = '\0';
        return;
    }
    strncpy(spk_error_buffer, message, sizeof(spk_error_buffer) - 1);
    spk_error_buffer[sizeof(spk_error_buffer) - 1] = '\0';
}
