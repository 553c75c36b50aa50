/* GET /: a small self-contained web page for citizens ("Mein Postfach"):
 * paste a token, see the notices, open one, download its attachments.
 *
 * Callers: server.c renders it once at start-up.
 * Everything is in this one document (no external resources, no CDN), and
 * the Content-Security-Policy allows exactly its own inline style and
 * script by SHA-256 hash (computed here from the very bytes served), plus
 * fetch() to our own origin: injected markup could run nothing.  The script
 * never uses innerHTML: all server data goes in through textContent.  The
 * token is kept in a variable only (not in storage), so closing the tab
 * forgets it. */
#include "reader/reader_private.h"

#include "util/b64url.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char s_css[] =
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}"
    "header{background:#003064;color:#fff;padding:12px 24px}"
    "header h1{margin:0;font-size:22px}"
    "main{max-width:960px;margin:0 auto;padding:16px 24px}"
    "section{background:#fff;border:1px solid #d5d9de;border-radius:6px;padding:16px;margin:0 0 16px}"
    "textarea{width:100%;box-sizing:border-box;font:12px monospace;height:5em}"
    "button{font:inherit;padding:6px 14px;margin:8px 8px 0 0;cursor:pointer}"
    "table{width:100%;border-collapse:collapse}"
    "th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}"
    "tr.unread td{font-weight:600}"
    "tr.row:hover{background:#eef3fa;cursor:pointer}"
    "button.link{font:inherit;background:none;border:0;padding:0;margin:0;color:#003064;"
    "text-decoration:underline;text-align:left;cursor:pointer}"
    "button:focus-visible,h2:focus-visible{outline:3px solid #f0a000;outline-offset:2px}"
    ".err{color:#a00000;font-weight:600}"
    ".muted{color:#5a6470;font-size:14px}"
    "pre{white-space:pre-wrap;font:inherit;margin:12px 0}"
    "ul{padding-left:20px}";

static const char s_js[] =
    "'use strict';\n"
    "(function(){\n"
    "var token='',next=null;\n"
    "function $(id){return document.getElementById(id);}\n"
    "function el(tag,text,cls){var e=document.createElement(tag);"
    "if(text!==undefined&&text!==null)e.textContent=String(text);if(cls)e.className=cls;return e;}\n"
    "function say(text,err){var s=$('status');s.textContent=text||'';s.className=err?'err':'';}\n"
    "function fmt(ts){if(!ts)return '\\u2014';var d=new Date(ts);"
    "return isNaN(d.getTime())?ts:d.toLocaleString('de-DE');}\n"
    "function size(n){return n<1024?n+' B':n<1048576?(n/1024).toFixed(1)+' KiB':"
    "(n/1048576).toFixed(1)+' MiB';}\n"
    "var texts={401:'Anmeldung ung\\u00fcltig oder abgelaufen. Bitte neu anmelden.',"
    "403:'F\\u00fcr diesen Bescheid ist ein h\\u00f6heres Vertrauensniveau der Anmeldung n\\u00f6tig.',"
    "404:'Nicht gefunden.',503:'Vor\\u00fcbergehend nicht verf\\u00fcgbar. Bitte sp\\u00e4ter erneut versuchen.'};\n"
    "function api(path){return fetch(path,{headers:{'Authorization':'Bearer '+token},"
    "cache:'no-store',credentials:'omit',referrerPolicy:'no-referrer'}).then(function(r){"
    "if(r.ok)return r;return r.json().catch(function(){return {};}).then(function(e){"
    "throw new Error(texts[r.status]||('Fehler '+r.status+(e&&e.message?': '+e.message:'')));});});}\n"
    "function list(more,focus){say('Lade Bescheide \\u2026');"
    "var q='/v1/messages?limit=20'+(more&&next?'&cursor='+encodeURIComponent(next):'');"
    "api(q).then(function(r){return r.json();}).then(function(d){"
    "var tb=$('rows');if(!more)tb.textContent='';"
    "d.messages.forEach(function(m){var tr=el('tr',null,'row'+(m.read_at?'':' unread'));"
    "tr.appendChild(el('td',fmt(m.created_at)));tr.appendChild(el('td',m.sender));"
    "var td=el('td'),b=el('button',m.title,'link');b.type='button';"
    "b.addEventListener('click',function(ev){ev.stopPropagation();open(m.id);});"
    "td.appendChild(b);tr.appendChild(td);tr.appendChild(el('td',m.reference));"
    "tr.appendChild(el('td',m.read_at?fmt(m.read_at):'ungelesen'));"
    "tr.addEventListener('click',function(){open(m.id);});tb.appendChild(tr);"
    "if(m.id===focus)b.focus();});"
    "next=d.next_cursor;$('more').hidden=!next;$('inbox').hidden=false;"
    "say(tb.children.length?'':'Keine Bescheide vorhanden.');"
    "}).catch(function(e){say(e.message,true);});}\n"
    "function open(id){say('\\u00d6ffne Bescheid \\u2026');"
    "api('/v1/messages/'+encodeURIComponent(id)).then(function(r){return r.json();}).then(function(n){"
    "var v=$('notice');v.textContent='';var h=el('h2',n.subject||n.title);h.tabIndex=-1;"
    "v.appendChild(h);"
    "v.appendChild(el('p','Von '+n.sender+' \\u00b7 Aktenzeichen '+(n.reference||'\\u2014')+"
    "' \\u00b7 eingegangen '+fmt(n.created_at)+' \\u00b7 abgerufen '+fmt(n.read_at),'muted'));"
    "v.appendChild(el('pre',n.body));"
    "if(n.attachments.length){v.appendChild(el('h3','Anlagen'));var ul=el('ul');"
    "n.attachments.forEach(function(a){var li=el('li');var b=el('button',a.name+' ('+size(a.size)+')');"
    "b.addEventListener('click',function(){download(n.id,a);});li.appendChild(b);ul.appendChild(li);});"
    "v.appendChild(ul);}var back=el('button','Zur\\u00fcck zur Liste');"
    "back.addEventListener('click',function(){v.hidden=true;list(false,id);});v.appendChild(back);"
    "v.hidden=false;h.focus();say('');}).catch(function(e){say(e.message,true);});}\n"
    "function download(id,a){say('Lade Anlage \\u2026');"
    "api('/v1/messages/'+encodeURIComponent(id)+'/attachments/'+a.index).then(function(r){"
    "return r.blob();}).then(function(b){var u=URL.createObjectURL(b);var l=el('a');l.href=u;"
    "l.download=a.name;document.body.appendChild(l);l.click();l.remove();"
    "setTimeout(function(){URL.revokeObjectURL(u);},10000);say('');})"
    ".catch(function(e){say(e.message,true);});}\n"
    "$('login').addEventListener('submit',function(ev){ev.preventDefault();"
    "token=$('token').value.trim();$('token').value='';$('notice').hidden=true;list(false);});\n"
    "$('more').addEventListener('click',function(){list(true);});\n"
    "$('logout').addEventListener('click',function(){token='';next=null;$('rows').textContent='';"
    "$('inbox').hidden=true;$('notice').hidden=true;say('Abgemeldet.');});\n"
    "})();\n";

static const char s_head[] =
    "<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta name=\"referrer\" content=\"no-referrer\">"
    "<title>Postfach \xe2\x80\x93 Bescheide</title><style>";

static const char s_body[] =
    "</style></head><body>"
    "<header><h1>Postfach</h1></header><main>"
    "<section><form id=\"login\"><label for=\"token\">Zugangstoken (Bearer-Token der "
    "Anmeldung)</label><textarea id=\"token\" autocomplete=\"off\" spellcheck=\"false\" "
    "required></textarea><button type=\"submit\">Bescheide anzeigen</button>"
    "<button type=\"button\" id=\"logout\">Abmelden</button></form>"
    "<p id=\"status\" role=\"status\"></p></section>"
    "<section id=\"notice\" hidden></section>"
    "<section id=\"inbox\" hidden><h2>Bescheide</h2><table><thead><tr><th>Eingang</th>"
    "<th>Absender</th><th>Betreff</th><th>Aktenzeichen</th><th>Abgerufen</th></tr></thead>"
    "<tbody id=\"rows\"></tbody></table><button type=\"button\" id=\"more\" hidden>Weitere "
    "laden</button></section>"
    "<p class=\"muted\">Bescheide gelten mit dem ersten Abruf als abgerufen; der Absender "
    "erh\xc3\xa4lt dar\xc3\xbc" "ber eine Best\xc3\xa4tigung, sofern er sie angefordert hat.</p>"
    "</main><script>";

static const char s_tail[] = "</script></body></html>\n";

/* 'sha256-<base64>' of a CSP source expression (CSP3 hash-source). */
static char *s_hash_source(const char *text)
{
    unsigned char digest[32];
    pf_sha256(text, strlen(text), digest);
    char *b64 = pf_b64_encode(digest, sizeof(digest));
    char *src = xasprintf("'sha256-%s'", b64);
    free(b64);
    return src;
}

char *pf_reader_page_render(size_t *len_r, char **csp_r)
{
    char *page = xasprintf("%s%s%s%s%s", s_head, s_css, s_body, s_js, s_tail);
    char *style = s_hash_source(s_css), *script = s_hash_source(s_js);
    *csp_r = xasprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "
                       "img-src 'self'; base-uri 'none'; form-action 'none'; "
                       "frame-ancestors 'none'",
                       script, style);
    free(style);
    free(script);
    *len_r = strlen(page);
    return page;
}
