# frozen_string_literal: true

# A real Unleash server (npm unleash-server 8.2.0 on a private PostgreSQL 15
# cluster) for the integration tests and the demo, started by
# support/unleash-server/harness.sh. Ruby stdlib only.
#
#   server = UnleashServer.instance       # starts once per process, lazily
#   server.create_flag("checkout.v2")
#   server.add_strategy("checkout.v2", strategy_name: "flexibleRollout",
#                       parameters: { "rollout" => "50", "stickiness" => "default",
#                                     "groupId" => "checkout.v2" })
#   server.enable("checkout.v2")
#
# If UNLEASH_URL, UNLEASH_ADMIN_TOKEN and UNLEASH_CLIENT_TOKEN are set (e.g.
# under `harness.sh run -- rspec`), that server is used and never stopped.
# Otherwise the first UnleashServer.instance starts one in a Dir.mktmpdir,
# exports those three variables (so spawned processes reuse it) and stops it
# at exit of the process that started it (not of forked children).
#
# Facts about unleash-server 8.2 that tests rely on, measured against this
# harness (fast knobs from harness.sh / server.js in force):
#
# * Flag changes reach GET /api/client/features after the server's revision
#   job runs: every 1 s by default, every 200 ms under the harness
#   (FORKFLAG_REVISION_POLL_MS). Until then the old ETag and old body are
#   served. Measured under the harness: about 0.1-0.3 s from the admin call
#   returning to a changed body (0.5-1.0 s with the server's defaults).
#   Poll with wait_for, never sleep-and-hope.
# * ETag is "<queryHash>:<revisionId>:v1" (strong, quoted). If-None-Match
#   with it gives 304 with NO headers at all (no ETag): keep the old ETag.
# * POST /api/client/metrics answers 202 with no body and no headers, and
#   a body that fails validation gets 400. Accepted counts are buffered in
#   memory and written to the database by a job that runs every 5 s by
#   default, every 200 ms under the harness (FORKFLAG_METRICS_FLUSH_MS); only
#   then do /api/admin/client-metrics/features/:name/raw and the totals here
#   show them. Measured under the harness: visible within 0.13-0.22 s (up to
#   5 s with the server's defaults). Counts add up across POSTs.
# * The server drops, silently (still 202): entries whose yes and no are both
#   0 (even if variants are non-zero); names that are not flags (archived
#   flags still count as flags, deleted ones do not). The list of flag names
#   is cached for 10 s by default, so metrics for a flag created less than
#   10 s earlier may be dropped too; the harness turns that cache off
#   (FORKFLAG_KNOWN_FLAGS_CACHE_MS=0).
# * Metrics are stored per (flag, appName, environment, hour of bucket.stop);
#   the environment is the client token's (development here). The raw
#   endpoint lists the last 24 hours (hoursBack, at most 48), zero-filled, so
#   a bucket whose stop lies in a later hour than the server's clock (or
#   more than 24 h ago) is stored but not shown.
# * POST /api/client/register answers 202; registrations (and the appName /
#   instanceId of every metrics POST) are buffered and written every 20 s by
#   default, every 200 ms under the harness (FORKFLAG_REGISTRATION_FLUSH_MS).
#   GET /api/admin/metrics/applications/:app is 404 until then (measured
#   0.2 s under the harness; up to 20 s with the server's defaults).
# * Headers: Authorization is the bare token (8.2 also accepts "Bearer <token>";
#   a wrong token gets 401, a client token on the admin API 403). Send
#   Unleash-Client-Spec: 5.2.0 (anything >= 4.2.0 gets `segments` as a
#   separate list; without it segment constraints are inlined; a value that
#   is not a semver gets 400). UNLEASH-APPNAME, UNLEASH-INSTANCEID and
#   UNLEASH-CONNECTION-ID are optional for the server (used for its own
#   request metrics) but every SDK sends them.
# * Rate limits are per client address, and all tests share 127.0.0.1. The
#   server's defaults are 6000/min for each of /api/client/metrics and
#   /api/client/register and 20000/min for all of /api/client; server.js
#   raises them to 1,000,000/min. /api/admin/search/features stays at
#   15/min: this helper never uses it.
# * Enabling an environment that has no strategy makes the server add one:
#   flexibleRollout {rollout "100", stickiness "default", groupId <flag>}.
#   Call add_strategy before enable to get exactly the strategies you want.
# * Request bodies: register needs appName, interval, started, strategies
#   (else 400 with details); metrics needs appName, and a bucket with start
#   and stop when it carries toggles. Strategy parameters are strings ("50");
#   this helper converts.
# * There is no /api/client/delta or streaming endpoint in 8.2 (404).
require "json"
require "net/http"
require "securerandom"
require "tmpdir"
require "uri"
require_relative "unleash_metrics"

class UnleashServer
  include UnleashMetrics

  class Error < StandardError; end
  class TimeoutError < Error; end

  HARNESS = File.expand_path("../../support/unleash-server/harness.sh", __dir__)
  CLIENT_SPEC = "5.2.0"
  HTTP_TIMEOUT = 15

  @mutex = Mutex.new
  @instance = nil

  class << self
    # The shared server of this process (started on first use).
    def instance
      @mutex.synchronize { @instance ||= acquire }
    end

    # A server of its own for a test that stops and restarts it; stopped
    # at exit of this process (call #stop to stop it sooner).
    def start_private
      start_own(export: false)
    end

    # True once instance has been called in this process (or its parent).
    def started?
      !@instance.nil?
    end

    private

    def acquire
      url = ENV.fetch("UNLEASH_URL", nil)
      admin = ENV.fetch("UNLEASH_ADMIN_TOKEN", nil)
      client = ENV.fetch("UNLEASH_CLIENT_TOKEN", nil)
      if url && !url.empty? && admin && !admin.empty? && client && !client.empty?
        return new(url: url, admin_token: admin, client_token: client)
      end

      start_own
    end

    def start_own(export: true)
      state_dir = Dir.mktmpdir("forkflag-unleash-")
      ok = system("bash", HARNESS, "start", state_dir, in: File::NULL)
      unless ok
        system("bash", HARNESS, "stop", state_dir, in: File::NULL)
        raise Error, "#{HARNESS} start failed (exit #{Process.last_status&.exitstatus}); its output above has the logs"
      end
      env = parse_env(File.read(File.join(state_dir, "env")))
      server = new(url: env.fetch("UNLEASH_URL"), admin_token: env.fetch("UNLEASH_ADMIN_TOKEN"),
                   client_token: env.fetch("UNLEASH_CLIENT_TOKEN"), state_dir: state_dir,
                   pid: env["UNLEASH_PID"]&.to_i, pg_port: env["PG_PORT"]&.to_i)
      %w[UNLEASH_URL UNLEASH_ADMIN_TOKEN UNLEASH_CLIENT_TOKEN].each { |k| ENV[k] = env.fetch(k) } if export
      at_exit { server.stop }
      server
    end

    def parse_env(text)
      text.each_line.with_object({}) do |line, h|
        key, value = line.chomp.split("=", 2)
        h[key] = value if key && value
      end
    end
  end

  attr_reader :url, :admin_token, :client_token, :state_dir, :pid, :pg_port

  def initialize(url:, admin_token:, client_token:, state_dir: nil, pid: nil, pg_port: nil)
    @url = url.chomp("/")
    @admin_token = admin_token
    @client_token = client_token
    @state_dir = state_dir
    @pid = pid
    @pg_port = pg_port
    @owner_pid = state_dir ? Process.pid : nil
  end

  # The server's root, without /api.
  def base_url
    @url.sub(%r{/api\z}, "")
  end

  # Did this process start the server (and so will stop it)?
  def owned?
    !@owner_pid.nil? && @owner_pid == Process.pid
  end

  # Stops the server if this very process started it; no-op otherwise and
  # when already stopped.
  def stop
    return unless owned? && @state_dir

    system("bash", HARNESS, "stop", @state_dir, in: File::NULL)
    @state_dir = nil
  end

  # Stops only the server process of a server this process started (its
  # database is kept), to test clients while it is down.
  def halt
    raise Error, "halt needs a server this process started" unless owned? && @state_dir
    raise Error, "#{HARNESS} halt failed" unless system("bash", HARNESS, "halt", @state_dir, in: File::NULL)
  end

  # Starts a halted server again, on the same port with the same tokens.
  def resume
    raise Error, "resume needs a server this process started" unless owned? && @state_dir
    raise Error, "#{HARNESS} resume failed" unless system("bash", HARNESS, "resume", @state_dir, in: File::NULL)
  end

  # ---- admin API -----------------------------------------------------------

  def create_flag(name, project: "default", type: "release", impression_data: false, description: nil)
    body = { name: name, type: type, impressionData: impression_data }
    body[:description] = description if description
    admin(:post, "/admin/projects/#{esc(project)}/features", body)
  end

  # Adds a strategy to the flag in the environment; returns the strategy id.
  # segments: ids from create_segment.
  def add_strategy(name, strategy_name: "default", parameters: {}, constraints: [], variants: [],
                   environment: "development", segments: [], project: "default", title: nil, disabled: false)
    body = strategy_body(strategy_name, parameters, constraints, variants, segments, title, disabled)
    res = admin(:post, "#{env_path(project, name, environment)}/strategies", body)
    res.fetch("id")
  end

  # Replaces a strategy (all fields); returns the strategy id.
  def update_strategy(name, strategy_id, strategy_name: "default", parameters: {}, constraints: [], variants: [],
                      environment: "development", segments: [], project: "default", title: nil, disabled: false)
    body = strategy_body(strategy_name, parameters, constraints, variants, segments, title, disabled)
    res = admin(:put, "#{env_path(project, name, environment)}/strategies/#{esc(strategy_id)}", body)
    res.fetch("id")
  end

  def delete_strategy(name, strategy_id, environment: "development", project: "default")
    admin(:delete, "#{env_path(project, name, environment)}/strategies/#{esc(strategy_id)}")
  end

  def strategies(name, environment: "development", project: "default")
    admin(:get, "#{env_path(project, name, environment)}/strategies")
  end

  # Defines a custom strategy on the server (flags can then name it), with
  # String parameters of these names; a strategy of that name defined
  # before is left as it is.
  def define_strategy(name, parameters: [])
    body = { name: name, description: "defined by the forkflag specs",
             parameters: parameters.map { |p| { name: p.to_s, type: "string", description: "", required: false } } }
    res = request(:post, "/admin/strategies", body: body, token: admin_token)
    check!(res, :post, "/admin/strategies") unless res.code == "409"
    name
  end

  def enable(name, environment: "development", project: "default")
    admin(:post, "#{env_path(project, name, environment)}/on")
  end

  def disable(name, environment: "development", project: "default")
    admin(:post, "#{env_path(project, name, environment)}/off")
  end

  # Turns a flag on or off and returns the wall-clock time (CLOCK_REALTIME,
  # comparable across processes) at which the server's client API first
  # served the change: what a client can see from then on. A spec that
  # bounds how soon clients see a flip measures from here, not from the
  # admin call, whose own latency (and the server's write) grows with the
  # machine's load and is not the client's doing.
  def flip(name, on:, environment: "development", project: "default")
    where = { environment: environment, project: project }
    on ? enable(name, **where) : disable(name, **where)
    wait_for(timeout: 20, interval: 0.01, message: "the client API serving #{name} #{on ? "on" : "off"}") do
      res = client_features
      res.code == "200" && JSON.parse(res.body)["features"].any? { |f| f["name"] == name && f["enabled"] == on }
    end
    Process.clock_gettime(Process::CLOCK_REALTIME)
  end

  def flag(name, project: "default")
    admin(:get, "/admin/projects/#{esc(project)}/features/#{esc(name)}")
  end

  # Archives the flag, then deletes it for good.
  def delete_flag(name, project: "default")
    admin(:delete, "/admin/projects/#{esc(project)}/features/#{esc(name)}")
    admin(:delete, "/admin/archive/#{esc(name)}")
  end

  # constraints: [{ contextName:, operator:, values: [...] }, ...]; returns the id.
  def create_segment(name, constraints, project: nil, description: nil)
    body = { name: name, constraints: constraints }
    body[:project] = project if project
    body[:description] = description if description
    admin(:post, "/admin/segments", body).fetch("id")
  end

  def delete_segment(id)
    admin(:delete, "/admin/segments/#{esc(id.to_s)}")
  end

  # /api/admin/metrics/applications/:app (nil while unknown: 404).
  def application(app_name)
    res = request(:get, "/admin/metrics/applications/#{esc(app_name)}", token: admin_token)
    return nil if res.code == "404"

    check!(res, :get, "/admin/metrics/applications/#{app_name}")
    parse(res)
  end

  # The instance ids the server lists for an application, once they include
  # `instance_id`. Applications and their instances are stored in separate
  # batched writes, so an application can be listed before its instance.
  def wait_for_instance(app_name, instance_id, timeout: 20)
    wait_for(timeout: timeout, interval: 0.2, message: "instance #{instance_id} of #{app_name}") do
      ids = application(app_name)&.fetch("instances")&.map { |i| i["instanceId"] }
      ids if ids&.include?(instance_id)
    end
  end

  # ---- client API (what an SDK does) ---------------------------------------

  def client_headers(app_name: "forkflag-test", instance_id: nil, connection_id: nil)
    {
      "Authorization" => client_token,
      "Unleash-Client-Spec" => CLIENT_SPEC,
      "UNLEASH-APPNAME" => app_name,
      "UNLEASH-INSTANCEID" => instance_id || "#{app_name}-#{Process.pid}",
      "UNLEASH-CONNECTION-ID" => connection_id || SecureRandom.uuid
    }
  end

  # GET /api/client/features; returns the Net::HTTPResponse (200 or 304).
  def client_features(etag: nil, headers: client_headers)
    extra = etag ? { "If-None-Match" => etag } : {}
    request(:get, "/client/features", headers: headers.merge(extra))
  end

  def client_register(body, headers: client_headers)
    res = request(:post, "/client/register", body: body, headers: headers)
    check!(res, :post, "/client/register")
    res
  end

  def client_metrics(body, headers: client_headers)
    res = request(:post, "/client/metrics", body: body, headers: headers)
    check!(res, :post, "/client/metrics")
    res
  end

  # ---- helpers -------------------------------------------------------------

  # Calls the block until it returns a truthy value (returned), at most every
  # interval seconds, for at most timeout seconds; then raises TimeoutError.
  def wait_for(timeout: 10, interval: 0.1, message: nil, &block)
    self.class.wait_for(timeout: timeout, interval: interval, message: message, &block)
  end

  def self.wait_for(timeout: 10, interval: 0.1, message: nil)
    raise ArgumentError, "timeout and interval must be positive" unless timeout.positive? && interval.positive?

    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    max_tries = (timeout / interval).ceil + 2
    last = nil
    max_tries.times do
      last = yield
      return last if last

      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      break if left <= 0

      sleep([interval, left].min)
    end
    raise TimeoutError, "#{message || "condition"} not met within #{timeout}s (last value: #{last.inspect})"
  end

  # Any admin API call: parsed JSON, or nil for an empty body. Raises Error
  # with the response body unless the status is 2xx.
  def admin(method, path, body = nil)
    res = request(method, path, body: body, token: admin_token)
    check!(res, method, path)
    parse(res)
  end

  def request(method, path, body: nil, token: nil, headers: {})
    uri = URI("#{url}#{path}")
    klass = { get: Net::HTTP::Get, post: Net::HTTP::Post, put: Net::HTTP::Put,
              patch: Net::HTTP::Patch, delete: Net::HTTP::Delete }.fetch(method)
    req = klass.new(uri)
    req["Authorization"] = token if token
    req["Accept"] = "application/json"
    headers.each { |k, v| req[k] = v }
    if body
      req["Content-Type"] = "application/json"
      req.body = body.is_a?(String) ? body : JSON.generate(body)
    end
    # A new connection per call: no socket is ever shared with a forked child.
    Net::HTTP.start(uri.host, uri.port, open_timeout: HTTP_TIMEOUT, read_timeout: HTTP_TIMEOUT,
                                        write_timeout: HTTP_TIMEOUT) { |http| http.request(req) }
  end

  private

  def strategy_body(strategy_name, parameters, constraints, variants, segments, title, disabled) # rubocop:disable Metrics/ParameterLists
    body = { name: strategy_name, parameters: stringify_values(parameters), constraints: constraints,
             variants: variants, segments: segments, disabled: disabled }
    body[:title] = title if title
    body
  end

  # The admin API wants strategy parameters as strings ("50", not 50).
  def stringify_values(hash)
    hash.to_h.transform_keys(&:to_s).transform_values { |v| v.is_a?(String) ? v : v.to_s }
  end

  def env_path(project, name, environment)
    "/admin/projects/#{esc(project)}/features/#{esc(name)}/environments/#{esc(environment)}"
  end

  def esc(segment)
    URI.encode_www_form_component(segment.to_s).gsub("+", "%20")
  end

  def check!(res, method, path)
    return if res.code.to_i.between?(200, 299)

    raise Error, "#{method.to_s.upcase} #{path} -> #{res.code}: #{res.body}"
  end

  def parse(res)
    body = res.body
    return nil if body.nil? || body.strip.empty?

    JSON.parse(body)
  end
end
