//! Faulty on purpose. Recurses without end: stopped by the stack limit.

use wasmig_guest::{Result, exec};

#[inline(never)]
#[allow(unconditional_recursion)]
fn deeper(n: u64) -> u64 {
    // Only scalar locals: the frames live on the engine's native stack, not
    // in the guest's linear memory. Division keeps LLVM from turning the
    // recursion into a loop.
    (deeper(n.wrapping_add(1)) / 3).wrapping_add(n)
}

fn up() -> Result<()> {
    exec("CREATE TABLE stack_scratch (x)", &[])?;
    core::hint::black_box(deeper(1));
    Ok(())
}

wasmig_guest::migration!(up);
