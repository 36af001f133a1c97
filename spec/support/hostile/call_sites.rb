# frozen_string_literal: true

require_relative "calls"

# A catalogue, one entry per call site: long by nature.
module Hostile # rubocop:disable Metrics/ModuleLength
  # Call sites: label => ->(value, fixture). Each one passes the hostile
  # value in one place of one public method.
  CALLS = {}.tap do |calls|
    Forkflag::Config::OPTIONS.each_key do |option|
      calls["Client.new(#{option}:)"] = lambda do |v, fx|
        base = { bootstrap: FLAGS, logger: QUIET }
        base = { url: "http://127.0.0.1:9/api", token: "t", app_name: "a", backup_path: false } if option == :url
        base = { logger: QUIET } if option == :file
        base = { bootstrap: FLAGS } if option == :logger
        fx.client_with(option, v, base)
      end
    end

    calls["enabled?(name)"] = ->(v, fx) { fx.client.enabled?(v) }
    calls["enabled?(name, context)"] = ->(v, fx) { fx.client.enabled?("f", v) }
    calls["enabled?(name, default:)"] = ->(v, fx) { fx.client.enabled?("missing", nil, default: v) }
    calls["enabled? with userId"] = ->(v, fx) { fx.client.enabled?("f", { userId: v }) }
    calls["enabled? with String keys"] = ->(v, fx) { fx.client.enabled?("f", { "userId" => v, "plan" => v }) }
    calls["enabled? with currentTime (DATE)"] = ->(v, fx) { fx.client.enabled?("after-2024", { currentTime: v }) }
    calls["enabled? with properties"] = ->(v, fx) { fx.client.enabled?("f", { properties: v }) }
    calls["enabled? with a property"] = ->(v, fx) { fx.client.enabled?("f", { properties: { plan: v } }) }
    calls["enabled? with value as a key"] = ->(v, fx) { fx.client.enabled?("f", Hostile.identity_hash(v)) }
    calls["enabled? with impressions"] = ->(v, fx) { fx.client.enabled?("imp", { userId: v, properties: v }) }
    calls["variant(name)"] = ->(v, fx) { fx.client.variant(v) }
    calls["variant(name, context)"] = ->(v, fx) { fx.client.variant("v", v) }
    calls["variant with currentTime"] = ->(v, fx) { fx.client.variant("v", { currentTime: v, sessionId: v }) }
    calls["explain(name)"] = ->(v, fx) { fx.client.explain(v).to_s }
    calls["explain(name, context)"] = ->(v, fx) { fx.client.explain("v", v).to_h }
    calls["explain with fields"] = lambda do |v, fx|
      fx.client.explain("f", { userId: v, currentTime: v, properties: { plan: v } }).to_s
    end
    calls["flag(name)"] = ->(v, fx) { fx.client.flag(v) }

    calls["strategies: { name => value }"] = ->(v, fx) { fx.client_with(:strategies, { "tenant" => v }) }
    calls["strategies: { value => strategy }"] = lambda do |v, fx|
      fx.client_with(:strategies, Hostile.identity_hash(v).transform_values { ->(_p, _c) { true } })
    end
    calls["strategies: [value]"] = ->(v, fx) { fx.client_with(:strategies, [v]) }
    calls["custom strategy answering value"] = lambda do |v, fx|
      fx.custom_client(->(_p, _c) { v }) { |c| [c.enabled?("custom"), c.variant("custom").to_h] }
    end
    calls["custom strategy raising value"] = lambda do |v, fx|
      fx.custom_client(->(_p, _c) { raise v }) { |c| [c.enabled?("custom"), c.variant("custom").to_h] }
    end
    calls["custom strategy reading context value"] = lambda do |v, fx|
      fx.custom_client(->(_p, c) { [c.to_h, c.get_by_name("plan"), c.include?(v)] }) do |c|
        [c.enabled?("custom", v), c.enabled?("custom", { userId: v, properties: v }),
         c.enabled?("custom", { properties: { plan: v } }), c.enabled?("custom", Hostile.identity_hash(v))]
      end
    end

    calls["wait_until_ready(timeout)"] = ->(v, fx) { fx.client.wait_until_ready(v) }
    calls["flush(timeout:)"] = ->(v, fx) { fx.client.flush(timeout: v) }
    calls["refresh(timeout:)"] = ->(v, fx) { fx.client.refresh(timeout: v) }
    calls["park(timeout:)"] = ->(v, fx) { fx.own_client { |c| c.park(timeout: v) } }
    calls["close(timeout:)"] = ->(v, fx) { fx.own_client { |c| c.close(timeout: v) } }
    calls["update(json)"] = ->(v, fx) { fx.client.update(v) }
    calls["on_impression(&value)"] = ->(v, fx) { fx.own_client { |c| c.on_impression(&v) } }
    calls["on_change(&value)"] = ->(v, fx) { fx.own_client { |c| c.on_change(&v) } }
    calls["on_error(&value)"] = ->(v, fx) { fx.own_client { |c| c.on_error(&v) } }
    calls["on_change listener raising value"] = lambda do |v, fx|
      fx.own_client do |c|
        c.on_change { raise v }
        c.update(FLAGS.sub('"f"', '"g"'))
        Forkflag::Logging.drain
      end
    end
    calls["stats, flag_names, flags, counts, ready? (value as an argument)"] = lambda do |v, fx|
      %i[stats flag_names flags counts ready?].each do |m|
        fx.client.public_send(m, v)
      rescue ArgumentError
        nil
      end
      fx.client.stats && fx.client.flag_names && fx.client.flags && fx.client.counts
    end

    calls["Context.new(fields)"] = ->(v, _fx) { Forkflag::Context.new(v) }
    calls["Context.new(value as a key)"] = ->(v, _fx) { Forkflag::Context.new(Hostile.identity_hash(v)) }
    %i[user_id session_id remote_address environment app_name current_time properties].each do |field|
      calls["Context.new(#{field}:)"] = ->(v, _fx) { Forkflag::Context.new(field => v).to_h }
    end
    calls["Context.new(properties: { plan: value })"] = lambda do |v, _fx|
      Forkflag::Context.new(properties: { plan: v }).to_h
    end
    calls["Context.new({ \"currentTime\" => value })"] = ->(v, _fx) { Forkflag::Context.new("currentTime" => v) }

    calls["Variant.new(name:)"] = ->(v, _fx) { Forkflag::Variant.new(name: v).to_h }
    calls["Variant.new(feature_enabled:)"] = ->(v, _fx) { Forkflag::Variant.new(name: "x", feature_enabled: v) }
    calls["Variant.new(payload:)"] = ->(v, _fx) { Forkflag::Variant.new(name: "x", payload: v).to_h }
    calls["Variant.new(payload: { type: value })"] = lambda do |v, _fx|
      Forkflag::Variant.new(name: "x", payload: { type: v, value: v }).to_h
    end

    calls["Forkflag.client="] = lambda do |v, _fx|
      Forkflag.client = v
    ensure
      Forkflag.client = nil
    end
    calls["Forkflag.configure"] = ->(v, _fx) { Forkflag.configure(bootstrap: FLAGS, logger: QUIET, timeout: v) }
    calls["Forkflag.options_from_env(env)"] = ->(v, _fx) { Forkflag.options_from_env(v) }
    calls["Forkflag.options_from_env(value in env)"] = lambda do |v, _fx|
      Forkflag.options_from_env("FORKFLAG_URL" => v, "FORKFLAG_TIMEOUT" => v)
    end
    calls["Forkflag.configured?(env)"] = ->(v, _fx) { Forkflag.configured?(v) }

    calls["ForkSafe.register"] = lambda do |v, _fx|
      ForkSafe.register(v)
    ensure
      ForkSafe.unregister(v)
    end
    calls["ForkSafe.unregister"] = ->(v, _fx) { ForkSafe.unregister(v) }
    calls["ForkSafe.automatic="] = lambda do |v, _fx|
      ForkSafe.automatic = v
    ensure
      ForkSafe.automatic = true
    end

    calls["Rack::Context.new(app)"] = ->(v, _fx) { Forkflag::Rack::Context.new(v) }
    calls["Rack::Context.new(user_id:)"] = ->(v, _fx) { Forkflag::Rack::Context.new(Fixture::APP, user_id: v) }
    calls["Rack::Context.new(properties:)"] = lambda do |v, _fx|
      Forkflag::Rack::Context.new(Fixture::APP, properties: v)
    end
    calls["Rack::Context#call (readers answer the value)"] = lambda do |v, fx|
      reader = ->(_env) { v }
      Forkflag::Rack::Context.new(Fixture::APP, user_id: reader, session_id: reader, remote_address: reader)
                             .call(fx.rack_env)
    end
    calls["Rack::Context#build (properties answer the value)"] = lambda do |v, fx|
      Forkflag::Rack::Context.new(Fixture::APP, properties: ->(_env) { v }).build(fx.rack_env)
    end
    calls["Rack.context(env)"] = ->(v, _fx) { Forkflag::Rack.context(v) }
    calls["Rack.context(session)"] = ->(v, fx) { Forkflag::Rack.context(fx.rack_env.merge("rack.session" => v)) }
    calls["Forkflag::Web.new(client)"] = ->(v, _fx) { Forkflag::Web.new(v) }
    calls["Forkflag::Web#call (value as the path and query)"] = lambda do |v, fx|
      Forkflag::Web.new(fx.client).call(fx.rack_env.merge("PATH_INFO" => v, "QUERY_STRING" => v))
    end
    calls["Forkflag::Web#call (value in the query)"] = lambda do |v, fx|
      query = Forkflag::Untrusted.kind?(v, String) ? "q=#{v}&flag=#{v}&properties=#{v}" : v
      Forkflag::Web.new(fx.client).call(fx.rack_env.merge("PATH_INFO" => "/explain", "QUERY_STRING" => query))
    end

    calls["with_flags(flags)"] = ->(v, _fx) { Hostile.with_flags(v) }
    calls["with_flags(name => value)"] = ->(v, _fx) { Hostile.with_flags("f" => v) }
    calls["with_flags(value => true)"] = ->(v, _fx) { Hostile.with_flags(Hostile.identity_hash(v)) }
    calls["with_flags(name => { variant: value })"] = ->(v, _fx) { Hostile.with_flags("f" => { variant: v }) }
    calls["with_flags(name => { payload: value })"] = lambda do |v, _fx|
      Hostile.with_flags("f" => { variant: "a", payload: v })
    end
    calls["with_flags(name => { value => 1 })"] = lambda do |v, _fx|
      Hostile.with_flags("f" => Hostile.identity_hash(v))
    end
    calls["Forkflag::RSpec.restore(depth)"] = ->(v, _fx) { Forkflag::RSpec.restore(v) }
    calls["Forkflag::RSpec.flags_file="] = lambda do |v, _fx|
      Forkflag::RSpec.flags_file = v
    ensure
      Forkflag::RSpec.flags_file = nil
    end

    calls["ServerHooks.worker_exit(timeout:)"] = ->(v, _fx) { Forkflag::ServerHooks.worker_exit(timeout: v) }
  end.freeze
end
