# frozen_string_literal: true

# An application written for the official Unleash Ruby SDK, run on
# forkflag's compatibility layer: the only forkflag-specific line is the
# Gemfile's (gem "forkflag", require: "forkflag/unleash"; here the
# `require "unleash"` below loads the layer). It answers each request with
# what this worker sees, as JSON in the shape of examples/config.ru (pid,
# flags, evaluations, requests, native_threads, ready).
#
# The client comes from the recipe (UNLEASH_RECIPE): "initializer" creates
# it here, once, before the fork; "preload" and "no_preload" in each Puma
# worker's on_worker_boot (examples/unleash/puma.rb), "passenger" in
# Passenger's starting_worker_process, as the official README shows. UNLEASH_URL, UNLEASH_TOKEN, UNLEASH_APP_NAME,
# UNLEASH_REFRESH_INTERVAL, UNLEASH_FLAGS, UNLEASH_VARIANTS configure it.
require "json"
require "unleash"
require "unleash/context"

# The initializer (config/initializers/unleash.rb in a Rails app).
Unleash.configure do |config|
  config.app_name = ENV.fetch("UNLEASH_APP_NAME")
  config.url = ENV.fetch("UNLEASH_URL")
  config.refresh_interval = Float(ENV.fetch("UNLEASH_REFRESH_INTERVAL", "15"))
  config.metrics_interval = 120 # the workers' shutdown sends what they counted
  config.custom_http_headers = { Authorization: ENV.fetch("UNLEASH_TOKEN") }
  config.backup_file = false
end
UNLEASH = Unleash::Client.new if ENV.fetch("UNLEASH_RECIPE", "initializer") == "initializer"

if ENV["UNLEASH_RECIPE"] == "passenger"
  PhusionPassenger.on_event(:starting_worker_process) do |forked|
    # Smart spawning forked this process (direct spawning needs nothing).
    UNLEASH = Unleash::Client.new if forked
  end
end

# Evaluations made in this process (counted again from zero after a fork).
module UnleashExample
  @lock = Mutex.new
  @pid = nil

  def self.count(name, enabled)
    @lock.synchronize do
      unless @pid == Process.pid
        @pid = Process.pid
        @requests = 0
        @evaluations = Hash.new { |h, k| h[k] = { "yes" => 0, "no" => 0 } }
      end
      if name
        @evaluations[name][enabled ? "yes" : "no"] += 1
      else
        @requests += 1
      end
      [@requests, @evaluations.transform_values(&:dup)]
    end
  end
end

flags = ENV.fetch("UNLEASH_FLAGS", "").split(",")
variants = ENV.fetch("UNLEASH_VARIANTS", "").split(",")

run(lambda do |env|
  request = Rack::Request.new(env)
  context = Unleash::Context.new(user_id: request.params["user"], remote_address: request.ip)
  values = {}
  flags.each do |name|
    values[name] = UNLEASH.is_enabled?(name, context)
    UnleashExample.count(name, values[name])
  end
  variants.each do |name|
    variant = UNLEASH.get_variant(name, context)
    values[name] = variant.name
    UnleashExample.count(name, variant.feature_enabled)
  end
  requests, evaluations = UnleashExample.count(nil, nil)
  body = JSON.generate(pid: Process.pid, generation: ForkSafe.generation, flags: values, evaluations: evaluations,
                       requests: requests, native_threads: ForkSafe.native_threads,
                       ready: UNLEASH.forkflag.ready?)
  [200, { "content-type" => "application/json", "content-length" => body.bytesize.to_s }, [body]]
end)
