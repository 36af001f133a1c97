# frozen_string_literal: true

require "json"
require "forkflag"

module Forkflag
  # Per-example flag overrides for RSpec, over a local test source: no
  # network, no server.
  #
  # `require "forkflag/rspec"` (in spec_helper.rb or rails_helper.rb) makes
  # {Forkflag.client} a client built from a bootstrap payload for the whole
  # run (the flags file {Forkflag::RSpec.flags_file} names, else no flags).
  # Overrides replace flags of that payload through {Client#update}; after
  # each example the payload is restored. The configuration lives in the
  # client's snapshot, so a process forked inside an example (Parallel, a
  # server under test) sees the overrides, and so do suites run by forked
  # workers or through `spring rspec`.
  #
  # @example Metadata
  #   it "shows the new checkout", flags: { "new-checkout" => true } do ... end
  #
  # @example Block (restored when the block ends) or for the rest of the example
  #   with_flags("new-checkout" => false) { ... }
  #   with_flags("banner" => { variant: "blue", payload: { color: "blue" } })
  #
  # A flag's value is true or false (on or off for everyone), a String (that
  # variant, flag on), or a Hash with :enabled (default true), :variant and
  # :payload: a String (a string payload), a Hash of :type and :value, or any
  # other JSON-able value (a json payload).
  module RSpec
    EMPTY_PAYLOAD = JSON.generate(version: 2, features: []).freeze

    @client = nil
    @base = nil
    @layers = []
    @flags_file = nil

    class << self
      # The flags file the test client starts from (client-features JSON):
      # set it, or FORKFLAG_TEST_FLAGS names it, or a Rails app's
      # config/flags.json when there is one. Read once, at {install}.
      attr_writer :flags_file

      # @return [String, nil]
      def flags_file
        @flags_file || ENV.fetch("FORKFLAG_TEST_FLAGS", nil)&.then { |f| f.empty? ? nil : f } || rails_flags_file
      end

      # The test client (built on first use).
      # @return [Client]
      def client
        @client || install
      end

      # Builds the test client and makes it {Forkflag.client}. An
      # application client built earlier (by the Railtie, from FORKFLAG_*
      # variables) is closed: the suite makes no network calls.
      #
      # @return [Client]
      def install
        return @client if @client && !@client.closed?

        @base = base_payload
        @client = Client.new(bootstrap: @base, logger: Logger.new($stderr, level: Logger::WARN, progname: "forkflag"))
        previous = Forkflag.current_client
        Forkflag.client = @client
        previous.close(timeout: 1) if previous && !previous.equal?(@client)
        @client
      end

      # Applies overrides on top of those in force.
      #
      # @param flags [Hash{String, Symbol => Boolean, String, Hash}]
      # @return [Integer] the depth to give {restore} to undo them
      def apply(flags)
        features = flags.to_h { |name, value| [flag_name(name), feature(flag_name(name), value)] }
        depth = @layers.size
        @layers << features
        load_layers
        depth
      end

      # Undoes the overrides applied since depth (0: all of them).
      def restore(depth = 0)
        return if @layers.size <= depth

        @layers.slice!(depth..)
        load_layers
      end

      # The overrides in force: name => the generated feature.
      # @return [Hash{String => Hash}]
      def overrides
        @layers.reduce({}) { |all, layer| all.merge(layer) }
      end

      private

      def load_layers
        client.update(payload_with(overrides))
      end

      def payload_with(features)
        base = JSON.parse(@base)
        kept = Array(base["features"]).reject { |f| features.key?(f["name"]) }
        base["features"] = kept + features.values
        JSON.generate(base)
      end

      def base_payload
        file = flags_file
        return EMPTY_PAYLOAD unless file

        text = File.read(file)
        JSON.parse(text)
        text
      rescue SystemCallError, JSON::ParserError => e
        raise ConfigError, "forkflag/rspec: cannot use #{file} as the test flags (#{e.class}: #{e.message}); " \
                           "set Forkflag::RSpec.flags_file to a client-features JSON file"
      end

      def rails_flags_file
        return nil unless defined?(::Rails) && ::Rails.respond_to?(:root) && ::Rails.root

        file = ::Rails.root.join("config", "flags.json").to_s
        File.file?(file) ? file : nil
      end

      def flag_name(name)
        return name.to_s if name.is_a?(String) || name.is_a?(Symbol)

        raise TypeError, "with_flags: a flag name must be a String or Symbol, got #{name.inspect}"
      end

      def feature(name, value)
        Feature.build(name, value)
      end
    end

    # Client-features entries for overrides.
    # @api private
    module Feature
      FLAG_KEYS = %i[enabled variant payload].freeze

      module_function

      def build(name, value)
        spec = flag_spec(name, value)
        strategy = { name: "default", parameters: {}, constraints: [] }
        if spec[:variant]
          variant = { name: spec[:variant].to_s, weight: 1000, weightType: "variable", stickiness: "default" }
          variant[:payload] = payload_of(spec[:payload]) unless spec[:payload].nil?
          strategy[:variants] = [variant]
        end
        { name: name, type: "release", enabled: spec[:enabled], strategies: [strategy], impressionData: false }
      end

      def flag_spec(name, value)
        case value
        when true, false then { enabled: value }
        when String, Symbol then { enabled: true, variant: value }
        when Hash then hash_spec(name, value)
        else
          raise ArgumentError, "with_flags: #{name.inspect} must be true, false, a variant name or a Hash of " \
                               ":enabled, :variant, :payload; got #{value.inspect}"
        end
      end

      def hash_spec(name, value)
        spec = value.transform_keys(&:to_sym)
        unknown = spec.keys - FLAG_KEYS
        unless unknown.empty?
          raise ArgumentError, "with_flags: #{name.inspect} has unknown keys #{unknown.inspect}; " \
                               "use #{FLAG_KEYS.inspect}"
        end
        if !spec[:payload].nil? && spec[:variant].nil?
          raise ArgumentError, "with_flags: #{name.inspect} has a payload but no variant"
        end

        spec.merge(enabled: spec.fetch(:enabled, true) ? true : false)
      end

      def payload_of(payload)
        case payload
        when String then { type: "string", value: payload }
        when Numeric then { type: "number", value: payload.to_s }
        when Hash
          typed = payload.transform_keys(&:to_sym)
          if typed.keys.sort == %i[type value]
            { type: typed[:type].to_s, value: typed[:value].to_s }
          else
            { type: "json", value: JSON.generate(payload) }
          end
        else { type: "json", value: JSON.generate(payload) }
        end
      end
    end

    # Included in every example group.
    module Helpers
      # Overrides flags: until the block ends (block form), or for the rest
      # of the example.
      #
      # @param flags [Hash] see {Forkflag::RSpec}
      # @return the block's value, or the test client without a block
      def with_flags(flags)
        depth = Forkflag::RSpec.apply(flags)
        return Forkflag::RSpec.client unless block_given?

        begin
          yield
        ensure
          Forkflag::RSpec.restore(depth)
        end
      end
    end
  end
end

RSpec.configure do |config|
  config.include Forkflag::RSpec::Helpers
  config.before(:suite) { Forkflag::RSpec.install }
  config.around(:each) do |example|
    Forkflag::RSpec.install
    Forkflag::RSpec.apply(example.metadata[:flags]) if example.metadata[:flags]
    example.run
  ensure
    Forkflag::RSpec.restore(0)
  end
end
