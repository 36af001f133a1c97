# frozen_string_literal: true

require "rack/request"
require_relative "../forkflag"

module Forkflag
  # Rack integration.
  module Rack
    # The env key the middleware stores the request's context under.
    ENV_KEY = "forkflag.context"

    # Builds a {Forkflag::Context} once per request (user id, session id,
    # remote address, optional properties) and stores it in
    # env["forkflag.context"], for every evaluation the request makes.
    #
    # Place it after the session and authentication middleware:
    #
    #   use Forkflag::Rack::Context,
    #       user_id: ->(env) { env["warden"]&.user&.id },
    #       properties: ->(env) { { plan: env["app.plan"] } }
    #
    #   # in the app
    #   Forkflag.enabled?("new-checkout", Forkflag::Rack.context(env))
    #
    # The remote address is Rack::Request#ip: REMOTE_ADDR, or the client
    # address from X-Forwarded-For when the request came through trusted
    # proxies (Rack's rules: loopback and private addresses).
    class Context
      # env["rack.session"]["user_id"] when there is one.
      DEFAULT_USER_ID = ->(env) { session_value(env, "user_id") }
      # The session's id when a session middleware is in front.
      DEFAULT_SESSION_ID = lambda do |env|
        session = env["rack.session"]
        id = session.id if Forkflag::Untrusted.responds_to?(session, :id)
        id = id.public_id if Forkflag::Untrusted.responds_to?(id, :public_id)
        id || session_value(env, "session_id")
      end

      # @param app [#call]
      # @param user_id [#call] env -> user id (String, Integer or nil)
      # @param session_id [#call] env -> session id
      # @param remote_address [#call] env -> client address
      # @param properties [#call, nil] env -> Hash of custom fields (or nil)
      # @raise [TypeError] when a reader does not respond to call
      def initialize(app, user_id: DEFAULT_USER_ID, session_id: DEFAULT_SESSION_ID,
                     remote_address: ->(env) { ::Rack::Request.new(env).ip }, properties: nil)
        @app = nil.equal?(app) ? nil : Forkflag::Arguments.callable(app, "Forkflag::Rack::Context: the app")
        @user_id = Forkflag::Arguments.callable(user_id, "Forkflag::Rack::Context option :user_id")
        @session_id = Forkflag::Arguments.callable(session_id, "Forkflag::Rack::Context option :session_id")
        @remote_address = Forkflag::Arguments.callable(remote_address, "Forkflag::Rack::Context option :remote_address")
        @properties = properties &&
                      Forkflag::Arguments.callable(properties, "Forkflag::Rack::Context option :properties")
      end

      # Stores the request's context (see {#build}) in the env, then calls
      # the app.
      #
      # @param env [Hash] the Rack env
      # @return [Array] the app's response
      # @raise [TypeError] as {#build}
      def call(env)
        env[ENV_KEY] = build(env)
        @app.call(env)
      end

      # The context for a request.
      # @param env [Hash] the Rack env
      # @return [Forkflag::Context]
      # @raise [TypeError] when env is not a Hash, or properties: gives
      #   something else than a Hash or nil
      def build(env)
        Forkflag::Arguments.hash_value(env, "Forkflag::Rack::Context#build: env", "a Rack env (a Hash)")
        fields = {
          user_id: string(@user_id.call(env)),
          session_id: string(@session_id.call(env)),
          remote_address: string(@remote_address.call(env))
        }.compact
        properties = @properties&.call(env)
        unless nil.equal?(properties)
          Forkflag::Arguments.hash_value(properties, "Forkflag::Rack::Context option :properties: the result")
          fields[:properties] = properties unless properties.empty?
        end
        Forkflag::Context.new(**fields)
      end

      # A value of the request's session (+rack.session+), or nil when
      # there is no session or reading it raises.
      #
      # @param env [Hash] the Rack env
      # @param key [String] the session key
      # @return [Object, nil]
      # @api private
      def self.session_value(env, key)
        session = env["rack.session"]
        session[key] if session.respond_to?(:[])
      rescue StandardError
        nil
      end

      private

      # A field's value: nil for nil or "", a String or Symbol as it is,
      # anything else left for the context to read through its to_s.
      def string(value)
        return nil if nil.equal?(value)
        return value unless Forkflag::Untrusted.kind?(value, String)

        value.empty? ? nil : value
      end
    end

    # The request's context: the one the middleware stored, else one built
    # now (and stored) with the default field readers.
    # @param env [Hash] the Rack env
    # @return [Forkflag::Context]
    # @raise [TypeError] when env is not a Hash
    def self.context(env)
      Forkflag::Arguments.hash_value(env, "Forkflag::Rack.context: env", "a Rack env (a Hash)")
      return env[ENV_KEY] || default_builder.build(env) if env.frozen?

      env[ENV_KEY] ||= default_builder.build(env)
    end

    # The middleware's builder with the default field readers.
    def self.default_builder
      @default_builder ||= Context.new(nil)
    end
    private_class_method :default_builder
  end
end
