# frozen_string_literal: true

require "logger"
require "json"
require_relative "values"

module Hostile
  # The flags every call runs against: on, with variants, with a DATE
  # constraint, with impression data.
  FLAGS = JSON.generate(
    version: 2,
    features: [
      { name: "f", enabled: true, strategies: [{ name: "default" }] },
      { name: "v", enabled: true,
        strategies: [{ name: "default", variants: [{ name: "a", weight: 1000, stickiness: "default",
                                                     payload: { type: "string", value: "p" } }] }] },
      { name: "after-2024", enabled: true,
        strategies: [{ name: "default", constraints: [{ contextName: "currentTime", operator: "DATE_AFTER",
                                                        value: "2024-01-01T00:00:00Z" }] }] },
      { name: "imp", enabled: true, impressionData: true, strategies: [{ name: "default" }] },
      { name: "custom", enabled: true,
        strategies: [{ name: "tenant", parameters: { tenants: "a" },
                       variants: [{ name: "a", weight: 1000, stickiness: "default" }] }] }
    ]
  ).freeze

  QUIET = Logger.new(nil)

  # What the calls share in one child: a client from FLAGS (no thread, no
  # network) and a Rack app.
  class Fixture
    attr_reader :client

    def initialize
      @client = Forkflag::Client.new(bootstrap: FLAGS, logger: QUIET)
      @client.on_impression { |_event| nil }
    end

    # A client built with one option set to the value; closed at once.
    def client_with(option, value, base = { bootstrap: FLAGS, logger: QUIET })
      client = Forkflag::Client.new(**base, option => value)
      client.close(timeout: 1)
      client
    end

    # Runs the block on a client whose custom strategy "tenant" is
    # `strategy`; closed afterwards.
    def custom_client(strategy)
      client = Forkflag::Client.new(bootstrap: FLAGS, logger: QUIET, strategies: { "tenant" => strategy })
      yield client
    ensure
      client&.close(timeout: 1)
    end

    # Runs the block on a client of its own, closed afterwards.
    def own_client
      client = Forkflag::Client.new(bootstrap: FLAGS, logger: QUIET)
      yield client
    ensure
      client&.close(timeout: 1)
    end

    def rack_env
      { "REMOTE_ADDR" => "10.0.0.1", "REQUEST_METHOD" => "GET", "rack.session" => { "user_id" => "7" } }
    end

    APP = ->(_env) { [200, {}, []] }
  end

  # An example group's with_flags, block form (restored after).
  def self.with_flags(flags)
    @helper ||= Object.new.extend(Forkflag::RSpec::Helpers)
    @helper.with_flags(flags) { Forkflag::RSpec.client.enabled?("f") }
  end
end

module Hostile
  # A wrong answer (not an exception a caller could expect).
  class WrongAnswer < Exception; end # rubocop:disable Lint/InheritException

  # Evaluates the DATE_AFTER 2024 flag at a time through a Hash, a Context
  # and variant: each either answers whether the time is after 2024, or
  # rejects the time with an allowed exception.
  def self.check_date(time, fixture)
    expected = time > Time.utc(2024, 1, 1)
    client = fixture.client
    answers = {
      "enabled? with a Hash" => -> { client.enabled?("after-2024", { currentTime: time }) },
      "enabled? with a Context" => lambda {
        client.enabled?("after-2024", Forkflag::Context.new(current_time: time))
      },
      "variant with a Hash" => -> { client.variant("after-2024", { currentTime: time }).feature_enabled? },
      "Context#current_time" => -> { Forkflag::Context.new(current_time: time).current_time > Time.utc(2024) }
    }
    wrong = answers.filter_map do |how, answer|
      got = begin
        answer.call
      rescue *ALLOWED
        next
      end
      "#{how} answered #{got.inspect}" unless got == expected
    end
    raise WrongAnswer, "#{time.inspect}: expected #{expected}, #{wrong.join(", ")}" unless wrong.empty?
  end
end
