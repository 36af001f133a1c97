# frozen_string_literal: true

module Demo
  # What each worker saw, as a text table.
  class Table
    def initialize(workers, seen)
      @workers = workers
      @seen = seen
      @names = workers.values.flat_map { |w| w.fetch("flags").keys }.uniq.sort
    end

    def render
      header = ["pid", "fork gen", *@names, "saw flip after", "native threads"]
      rows = @workers.sort.map { |pid, answer| row(pid, answer) }
      widths = header.each_index.map { |i| ([header] + rows).map { |r| r[i].size }.max }
      lines = [header, widths.map { |w| "-" * w }, *rows].map do |cells|
        "  #{cells.each_with_index.map { |c, i| c.ljust(widths[i]) }.join("  ")}"
      end
      "\n#{lines.join("\n")}\n\n"
    end

    private

    def row(pid, answer)
      delay = @seen[pid]
      [pid.to_s, answer["generation"].to_s, *@names.map { |n| answer.dig("flags", n).to_s },
       delay ? format("%.3f s", delay) : "not seen", answer["native_threads"].to_s]
    end
  end
end
