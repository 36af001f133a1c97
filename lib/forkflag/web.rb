# frozen_string_literal: true

require_relative "../forkflag"
require_relative "web/markup"
require_relative "web/request"
require_relative "web/style"
require_relative "web/tables"
require_relative "web/page"
require_relative "web/process_page"
require_relative "web/flags_page"
require_relative "web/flag_page"
require_relative "web/explain_form"
require_relative "web/explain_trace"
require_relative "web/explain_page"
require_relative "web/error_page"

module Forkflag
  # A read-only status page for a client, as a Rack application: this
  # process's state, the flags, one flag in full, and why a context gets the
  # answer it gets ({Client#explain}). Each process answers for itself: under
  # Puma, Unicorn or Pitchfork the page shows the worker that served the
  # request (its pid and fork generation are in every page's header).
  #
  # Server-rendered HTML with a small stylesheet and no JavaScript; GET and
  # HEAD only. Every value from the flags and from the request is escaped.
  # It protects nothing itself: mount it behind the host application's
  # authentication (see the README's "Status page").
  #
  # @example Rails (config/routes.rb)
  #   mount Forkflag::Web.new(Forkflag.client) => "/forkflag"
  # @example config.ru
  #   map("/forkflag") { run Forkflag::Web.new(client) }
  class Web
    # The pages: path pattern => page class (the flag's name is the capture).
    ROUTES = [
      [%r{\A/\z}, ProcessPage],
      [%r{\A/flags/?\z}, FlagsPage],
      [%r{\A/flags/(.+)\z}m, FlagPage],
      [%r{\A/explain/?\z}, ExplainPage]
    ].freeze

    # Headers of every answer: no caching, no framing, no script, no sniffing.
    HEADERS = {
      "content-security-policy" => "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
                                   "base-uri 'none'; frame-ancestors 'none'",
      "x-content-type-options" => "nosniff",
      "x-frame-options" => "DENY",
      "referrer-policy" => "no-referrer",
      "cache-control" => "no-store"
    }.freeze

    # Methods answered (others get 405).
    ALLOWED = %w[GET HEAD].freeze

    # @return [Client] the client shown
    attr_reader :client

    # @param client [Client] the client to show (usually Forkflag.client,
    #   created before the server forks)
    # @raise [TypeError] when client is not a Forkflag::Client
    def initialize(client)
      unless Untrusted.kind?(client, Client)
        raise TypeError, "Forkflag::Web.new takes a Forkflag::Client, got #{Untrusted.describe(client)}"
      end

      @client = client
    end

    # Answers a Rack request.
    #
    # @param env [Hash] the Rack environment
    # @return [Array(Integer, Hash, Array<String>)] a Rack response
    def call(env)
      method = env["REQUEST_METHOD"]
      return not_allowed(method) unless ALLOWED.include?(method)

      request = Request.new(env)
      answer(request, *serve(request))
    rescue StandardError => e
      env["rack.errors"]&.puts("forkflag web: #{e.class}: #{e.message}")
      request ||= Request.new(env)
      answer(request, *ErrorPage.new(@client, request, status: 500, message: "The page raised #{e.class}.").render)
    end

    # @return [String]
    def inspect
      "#<Forkflag::Web #{@client.inspect}>"
    end

    private

    # The status, content type and body for a request.
    def serve(request)
      request.check!
      return [200, Style::CSS, "text/css; charset=utf-8"] if request.path == Style::PATH
      return [200, Style::ICON, "image/svg+xml"] if request.path == Style::ICON_PATH

      page_for(request).render
    rescue Request::Invalid => e
      ErrorPage.new(@client, request, status: 400, message: e.message).render
    end

    def page_for(request)
      ROUTES.each do |pattern, page|
        match = pattern.match(request.path)
        return page.new(@client, request, *match.captures) if match
      end
      ErrorPage.new(@client, request, status: 404, message: "There is no page at #{request.path}.")
    end

    def answer(request, status, body, type = "text/html; charset=utf-8")
      headers = HEADERS.merge("content-type" => type, "content-length" => body.bytesize.to_s)
      [status, headers, request.head? ? [] : [String.new(body)]]
    end

    def not_allowed(method)
      body = "#{Html.text(method)} is not allowed here: this page is read-only (GET, HEAD)\n"
      [405, HEADERS.merge("content-type" => "text/plain; charset=utf-8", "allow" => ALLOWED.join(", "),
                          "content-length" => body.bytesize.to_s), [body]]
    end
  end
end
