# frozen_string_literal: true

require "fileutils"
require "json"

# Where the demo's flags come from.
module Demo
  # A flag source: the watched file, or a real Unleash server.
  class FileSource
    def initialize
      @path = File.join(WORK, "flags.json")
      FileUtils.cp(File.join(ROOT, "examples/flags.json"), @path)
    end

    def describe
      "a local file, #{@path} (copied from examples/flags.json, watched by forkflag)"
    end

    def env
      { "FORKFLAG_FILE" => @path }
    end

    def flip(value)
      payload = JSON.parse(File.read(@path))
      flag = payload.fetch("features").find { |f| f["name"] == FLIPPED }
      abort("demo: #{FLIPPED} is not in #{@path}") unless flag
      flag["enabled"] = value
      tmp = "#{@path}.#{Process.pid}.tmp"
      File.write(tmp, JSON.pretty_generate(payload))
      File.rename(tmp, @path) # atomic: a worker never reads half a file
    end

    def stop; end
  end

  # The real Unleash server of the test suite's harness, started here.
  class UnleashSource
    def initialize
      require File.join(ROOT, "spec/support/unleash_server")
      Demo.step("starting unleash-server 8.2.0 and PostgreSQL 15 (support/unleash-server/harness.sh)")
      @server = UnleashServer.start_private
      @app = "forkflag-demo-#{Process.pid}"
      JSON.parse(File.read(File.join(ROOT, "examples/flags.json"))).fetch("features").each do |f|
        create(f)
      end
    end

    # The flag as examples/flags.json has it, on the server.
    def create(flag)
      @server.create_flag(flag["name"])
      flag.fetch("strategies").each do |s|
        @server.add_strategy(flag["name"], strategy_name: s["name"], parameters: s["parameters"] || {},
                                           constraints: s["constraints"] || [], variants: s["variants"] || [])
      end
      @server.enable(flag["name"]) if flag["enabled"]
    end

    def describe
      "a real Unleash server at #{@server.url} (refresh every 1 s)"
    end

    def env
      { "FORKFLAG_URL" => @server.url, "FORKFLAG_TOKEN" => @server.client_token, "FORKFLAG_APP_NAME" => @app,
        "FORKFLAG_REFRESH_INTERVAL" => "1", "FORKFLAG_METRICS_INTERVAL" => "5", "FORKFLAG_BACKUP_PATH" => "false" }
    end

    def flip(value)
      value ? @server.enable(FLIPPED) : @server.disable(FLIPPED)
    end

    def stop
      @server.stop
    end
  end
end
