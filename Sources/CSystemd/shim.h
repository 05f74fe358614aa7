#ifndef MESHWORK_CSYSTEMD_SHIM_H
#define MESHWORK_CSYSTEMD_SHIM_H
// sd_journal_send is variadic, which Swift cannot call; sd_journal_sendv takes an iovec array instead.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>
#endif
