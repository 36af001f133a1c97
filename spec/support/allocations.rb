# frozen_string_literal: true

# Counts the Ruby objects a block allocates. GC.stat's count is
# process-wide, so another Ruby thread (forkflag's log thread wakes every
# second) can add to one measurement; a stray allocation only ever adds,
# so the least of a few runs is the block's own count.
module Allocations
  module_function

  def of(runs: 5)
    Array.new(runs) do
      before = GC.stat(:total_allocated_objects)
      yield
      GC.stat(:total_allocated_objects) - before
    end.min
  end
end
