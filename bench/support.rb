# frozen_string_literal: true

# Shared by the Ruby benchmarks in bench/: payloads, medians and the table
# printing. Every figure a benchmark reports is a ratio against a reference
# measured in the same run, in alternating rounds, so other load on the
# machine and drift hit subject and reference alike. None of them asserts a
# time: each prints its ratio and whether the goal is met.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "forkflag"
require "json"
require "etc"

# The benchmarks' floor, Forkflag::Client#_noop (compiled by `rake compile`,
# private like every native helper), called as plainly as enabled? is.
unless Forkflag::Client.private_method_defined?(:_noop)
  abort "Forkflag::Client#_noop is missing: build the library with `rake compile` (test hooks)"
end
Forkflag::Client.__send__(:public, :_noop)

# Helpers of the benchmark scripts.
module Bench
  module_function

  # The 10 names bench/throughput/config.ru evaluates per request (and
  # bench/cold.rb), frozen as literals are: flags of every shape of
  # mixed_features.
  def request_names
    Array.new(10) { |i| -format("flag-%05d", i * 7) }.freeze
  end

  # The context that app builds for a request.
  def request_context(user)
    { userId: user, environment: "production", properties: { plan: "plan-3", version: "1.4.0" } }
  end

  # The constrained shape: three constraints, one of them SEMVER and one an
  # IN list of 1,000 values (the same shape as the core benchmark's).
  def constrained_flag(name)
    {
      name: name, enabled: true,
      strategies: [{
        name: "default",
        constraints: [
          { contextName: "version", operator: "SEMVER_GTE", value: "1.5.0" },
          { contextName: "userId", operator: "IN", values: Array.new(1000) { |i| "user-#{i * 2}" } },
          { contextName: "email", operator: "STR_ENDS_WITH", values: ["@example.com"] }
        ]
      }]
    }
  end

  def default_flag(name)
    { name: name, enabled: true, strategies: [{ name: "default" }] }
  end

  # A flag whose one strategy is the custom strategy "trivial".
  def custom_flag(name)
    { name: name, enabled: true, strategies: [{ name: "trivial", parameters: { answer: "yes" } }] }
  end

  # A client whose custom strategy "trivial" answers true: the cost of the
  # call into Ruby, the parameters Hash and the strategy's context.
  def custom_client(json)
    Forkflag::Client.new(bootstrap: json, backup_path: false, disable_metrics: true,
                         strategies: { "trivial" => ->(_parameters, _context) { true } })
  end

  def rollout_flag(name, percent)
    {
      name: name, enabled: true,
      strategies: [{ name: "flexibleRollout",
                     parameters: { rollout: percent.to_s, stickiness: "default", groupId: name } }]
    }
  end

  def variants_flag(name)
    variants = %w[red green blue black].each_with_index.map do |v, i|
      { name: v, weight: 100 * (i + 1), weightType: "variable", stickiness: "default",
        payload: { type: "string", value: "#{v}-payload" } }
    end
    { name: name, enabled: true, strategies: [{ name: "default", variants: variants }] }
  end

  # A payload of `count` flags of mixed shapes, as an application has them:
  # default, rollouts, constrained, variants, user lists, in turn.
  def mixed_features(count)
    Array.new(count) do |i|
      name = format("flag-%05d", i)
      case i % 5
      when 0 then default_flag(name)
      when 1 then rollout_flag(name, (i * 7) % 101)
      when 2 then small_constrained_flag(name, i)
      when 3 then variants_flag(name)
      else user_list_flag(name, i)
      end
    end
  end

  def small_constrained_flag(name, seed)
    {
      name: name, enabled: true, description: "constrained flag #{seed}",
      strategies: [{
        name: "flexibleRollout",
        parameters: { rollout: "100", stickiness: "default", groupId: name },
        constraints: [
          { contextName: "environment", operator: "IN", values: %w[production staging] },
          { contextName: "plan", operator: "IN", values: Array.new(10) { |k| "plan-#{(seed + k) % 40}" } },
          { contextName: "version", operator: "SEMVER_GTE", value: "1.#{seed % 10}.0" }
        ]
      }]
    }
  end

  def user_list_flag(name, seed)
    ids = Array.new(10) { |k| "user-#{(seed * 10) + k}" }.join(",")
    { name: name, enabled: true, strategies: [{ name: "userWithId", parameters: { userIds: ids } }] }
  end

  def payload(features)
    JSON.generate(version: 2, features: features)
  end

  # A client that only evaluates: no server, no backup file, no metrics.
  def local_client(json)
    Forkflag::Client.new(bootstrap: json, backup_path: false, disable_metrics: true)
  end

  def median(values)
    sorted = values.sort
    mid = sorted.size / 2
    sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
  end

  # The value below which `q` (0..1) of the values lie (nearest rank).
  def percentile(values, quantile)
    sorted = values.sort
    sorted[((sorted.size - 1) * quantile).round]
  end

  def env_number(name, default)
    value = ENV.fetch(name, nil)
    value.nil? || value.empty? ? default : Float(value)
  end

  def machine
    cpu = File.read("/proc/cpuinfo")[/^model name\s*:\s*(.*)$/, 1] rescue "unknown CPU" # rubocop:disable Style/RescueModifier
    load = File.read("/proc/loadavg").split.first(3).join(" ")
    "#{RUBY_DESCRIPTION}; #{Etc.nprocessors} x #{cpu}; load average #{load}"
  end

  # Prints rows (arrays) under headers, columns padded to fit.
  def table(headers, rows)
    all = [headers] + rows.map { |r| r.map(&:to_s) }
    widths = headers.each_index.map { |i| all.map { |r| r[i].length }.max }
    all.each_with_index do |row, n|
      puts row.each_with_index.map { |cell, i| i.zero? ? cell.ljust(widths[i]) : cell.rjust(widths[i]) }.join("  ")
      puts widths.map { |w| "-" * w }.join("  ") if n.zero?
    end
  end

  # The path of `program` on PATH; aborts naming `script` and the Debian
  # package to install when there is none.
  def executable(program, script, package = program)
    found = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |d| File.join(d, program) }
               .find { |f| File.executable?(f) }
    found or abort "#{script} needs #{program} (apt-get install #{package})"
  end

  # The valgrind executable on PATH; aborts naming `script` when there is none.
  def valgrind(script)
    executable("valgrind", script)
  end

  def verdict(met)
    met ? "met" : "MISSED"
  end
end
