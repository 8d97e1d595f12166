/// jemalloc rather than glibc's malloc: a restore decodes and sorts a
/// partition's snapshots and replies on a thread of its own, and glibc kept
/// what those threads freed in their arenas (the service stayed at 93 to
/// 113 MiB once restored, against 55 to 62 while taking orders). jemalloc
/// gives freed pages back to the system after its decay time
/// (BENCHMARKS.md, "jemalloc for the command service").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Pages are given back by jemalloc's own thread, also while the service
    // idles after a restore, instead of only on later allocations.
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!(
            "jemalloc's background thread did not start ({error}); freed memory is returned on later allocations"
        );
    }
    command::cli::main(std::env::args_os()).await
}
