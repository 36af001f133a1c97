# frozen_string_literal: true

# A Rack app that evaluates feature flags on every request and answers with
# what this worker process sees, as JSON:
#
#   {"pid":..., "generation": <forks since the client was created>,
#    "server_generation": <Pitchfork's mold generation, when known>,
#    "flags": {"new-checkout": false, "dark-mode": true, "banner": "blue"},
#    "evaluations": {"new-checkout": {"yes": 0, "no": 12}, ...},
#    "requests": 12, "native_threads": 1, "log_thread": true, "ready": true}
#
# "evaluations" counts what this process evaluated (since its fork), so the
# metrics the flag server reports can be checked against it. "log_thread"
# says whether this process runs the Ruby thread that delivers forkflag's
# log messages: a server's worker boot hook starts it, while a process
# forked without one starts it once a message waits.
#
# The client is created here, once, before the server forks (preload_app!
# in Puma, preload_app true in Unicorn, Pitchfork always, Passenger's smart
# spawning). Its source comes
# from FORKFLAG_* variables (FORKFLAG_URL, FORKFLAG_TOKEN,
# FORKFLAG_APP_NAME, FORKFLAG_REFRESH_INTERVAL, ...; see the README), or by
# default examples/flags.json, re-read when it changes.
#
# FORKFLAG_EXAMPLE_FLAGS (default "new-checkout,dark-mode") names the
# on/off flags to evaluate and FORKFLAG_EXAMPLE_VARIANTS (default "banner")
# the variant flags. The context's user id is the `user` query parameter.
#
# The status page (Forkflag::Web) is mounted at /forkflag: open
# http://127.0.0.1:9292/forkflag/ to see the flags and this worker's state,
# and to explain an answer. Each worker answers for itself. It has no
# authentication of its own: a real application mounts it behind its own
# (see the README's "Status page").
#
#   puma -C examples/puma.rb examples/config.ru
#   unicorn -c examples/unicorn.conf.rb examples/config.ru
#   pitchfork -c examples/pitchfork.conf.rb examples/config.ru
#   passenger start --engine builtin --spawn-method smart -R examples/config.ru
require "json"
require "forkflag"
require "forkflag/rack"
require "forkflag/web"
# Registers forkflag's hooks when Passenger loads this file; does nothing
# under the other servers (their hooks are in their configuration files).
require "forkflag/passenger"

# State of the example app in this process.
module ForkflagExample
  @lock = Mutex.new
  @pid = nil

  class << self
    # Set by a server hook that knows it (Pitchfork's worker generation).
    attr_accessor :server_generation

    def names(variable, default)
      ENV.fetch(variable, default).split(",").map(&:strip).reject(&:empty?)
    end

    # Counts one evaluation; the counts start at zero in each process.
    def count(name, enabled)
      @lock.synchronize do
        reset unless @pid == Process.pid
        @requests += 1 if name.nil?
        @evaluations[name][enabled ? "yes" : "no"] += 1 if name
      end
    end

    def snapshot
      @lock.synchronize do
        reset unless @pid == Process.pid
        [@requests, @evaluations.transform_values(&:dup)]
      end
    end

    private

    def reset
      @pid = Process.pid
      @requests = 0
      @evaluations = Hash.new { |h, k| h[k] = { "yes" => 0, "no" => 0 } }
    end
  end
end

unless Forkflag.configured?
  Forkflag.configure(file: File.expand_path("flags.json", __dir__), app_name: "forkflag-example",
                     refresh_interval: 1)
end
client = Forkflag.client # before the fork
client.wait_until_ready(5)
flags = ForkflagExample.names("FORKFLAG_EXAMPLE_FLAGS", "new-checkout,dark-mode")
variants = ForkflagExample.names("FORKFLAG_EXAMPLE_VARIANTS", "banner")

use Forkflag::Rack::Context, user_id: ->(env) { Rack::Request.new(env).params["user"] }

map("/forkflag") { run Forkflag::Web.new(client) }

run(lambda do |env|
  context = Forkflag::Rack.context(env)
  values = {}
  flags.each do |name|
    values[name] = client.enabled?(name, context)
    ForkflagExample.count(name, values[name])
  end
  variants.each do |name|
    variant = client.variant(name, context)
    values[name] = variant.name
    ForkflagExample.count(name, variant.feature_enabled?)
  end
  ForkflagExample.count(nil, nil)
  requests, evaluations = ForkflagExample.snapshot
  body = JSON.generate(
    pid: Process.pid, generation: ForkSafe.generation, server_generation: ForkflagExample.server_generation,
    flags: values, evaluations: evaluations, requests: requests,
    native_threads: ForkSafe.native_threads, log_thread: Forkflag::Logging.thread&.alive? == true,
    ready: client.ready?
  )
  [200, { "content-type" => "application/json", "content-length" => body.bytesize.to_s }, [body]]
end)
