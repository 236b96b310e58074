// Handing freed heap memory back to the system after large or hostile work, so a daemon that
// idles for weeks between updates does not keep the high-water mark of its last burst.
#pragma once

namespace ota {

// malloc_trim(0): returns the free top of every arena and the free whole pages inside them.
// Costs about a millisecond per tens of MiB of heap; call it after rare, heavy work (an update
// session, an Update/Abort/Rollback call), never per Status call.
void ReleaseFreeMemory();

// This process's resident set in KiB (/proc/self/statm), or -1 when it cannot be read.
long ResidentSetKib();

// Sets glibc's allocator for a long-lived daemon; call first thing in main (before any thread).
// A fixed mmap threshold (glibc otherwise raises it as large blocks are freed, after which such
// blocks stay in the heap) returns any block over 128 KiB when it is freed; `max_arenas` instead
// of 8 per core keeps freed memory from being spread thinly over many arenas.
void TuneAllocatorForDaemon(int max_arenas);

}  // namespace ota
